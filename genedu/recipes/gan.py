"""`genedu train dcgan | cdcgan | stylegan`: the adversarial families (genedu.gan,
genedu.stylegan), trained by the one loop with `gan.train_step`, then judged by their
samples: FID, precision and recall on classifier-mnist features, and for a conditional
GAN how often the classifier names the class asked for (and, with --cas-steps, CAS).

    genedu train dcgan --data mnist --steps 20000 --out runs/dcgan-mnist
    genedu train cdcgan --data mnist --minutes 25 --eval-minutes 5 10 --out runs/cdcgan
    genedu train stylegan --data frey --augment color,translation,cutout --minutes 6 --out f
"""

from __future__ import annotations

import functools

import torch

from .. import data, gan, hub, metrics, train
from ..stylegan import StyleGAN, StyleGANConfig
from . import common

MODELS = (gan.GAN, StyleGAN)


def arguments(p, *, model: str) -> None:
    style = model == "stylegan"
    config = StyleGANConfig if style else gan.GANConfig
    common.data_arguments(p, "mnist")
    common.option(p, "--latent", config, "latent_dim", "z's dimensions" + " (and w's)" * style)
    common.option(p, "--hidden", config, "hidden",
                  "width: G's widest synthesis layer" if style else
                  "width: D's first channels (G's widest layer has twice as many)")  # fmt: skip
    side = common.default(config, "shape")[-1]
    p.add_argument("--size", type=int, default=side, help="the side images are pooled or "
                   "padded to" + (", a power of two" if style else ""))  # fmt: skip
    common.option(p, "--loss", config, "loss", "the game", choices=sorted(gan.LOSSES))
    common.option(p, "--r1", config, "r1_gamma", "R1 penalty weight on D's gradient at reals")
    ema = common.default(config, "ema_decay") if style else 0.999  # DCGAN's recipe: with EMA
    p.add_argument("--ema", type=float, default=ema, help="EMA decay of G's weights (0: none)")
    if style:
        common.option(p, "--augment", config, "augment",
                      'DiffAugment policy for D, e.g. "color,translation,cutout"')  # fmt: skip
    if model == "cdcgan":
        common.option(
            p,
            "--conditioning",
            config,
            "conditioning",
            "how D sees the label",
            choices=["input", "projection"],
        )
        p.add_argument("--cas-steps", type=int, default=0,
                       help="also measure CAS, its classifier trained this many steps")  # fmt: skip
    lr, batch = (2e-3, 32) if style else (2e-4, 64)  # StyleGAN2's and DCGAN's
    common.run_arguments(p, steps=10_000, lr=lr, batch=batch)


ARGUMENTS = {m: functools.partial(arguments, model=m) for m in ("dcgan", "cdcgan", "stylegan")}


def build(args, ds: data.ImageSet):
    """The model `args.model` names, and its Adam betas."""
    shape = (ds.shape[0], args.size, args.size)  # checked by the config: a clear error
    if args.model == "stylegan":
        config = StyleGANConfig(
            shape=shape,
            latent_dim=args.latent,
            w_dim=args.latent,
            hidden=args.hidden,
            augment=args.augment,
            loss=args.loss,
            r1_gamma=args.r1,
            ema_decay=args.ema,
        )
        return StyleGAN(config), (0.0, 0.99)  # StyleGAN2's Adam
    conditional = args.model == "cdcgan"
    if conditional and ds.labels is None:
        raise ValueError(f"cdcgan needs labels; {args.data} has none")
    config = gan.GANConfig(
        shape=shape,
        latent_dim=args.latent,
        hidden=args.hidden,
        num_classes=int(ds.labels.max()) + 1 if conditional else 0,
        conditioning=getattr(args, "conditioning", "input"),
        loss=args.loss,
        r1_gamma=args.r1,
        ema_decay=args.ema,
    )
    return gan.GAN(config), (0.5, 0.999)  # DCGAN's Adam


def run(args):
    """A DCGAN, a class-conditional DCGAN or a StyleGAN on `--data`, then measured."""
    train.seed_everything(args.seed)
    ds = data.load(args.data, "train", fallback=args.fallback)
    data.to_square(ds.images[:1], args.size)  # a size it cannot reach fails here, clearly
    model, betas = build(args, ds)
    dev = common.device(args)

    def measure(m) -> dict:  # the quality curve: at each --eval-minutes mark of training
        found = {k: v for k, v in quality(m, args).items() if isinstance(v, float)}
        print(f"  quality during training: {found}", flush=True)
        return found

    history = train.fit(
        model.to(dev),
        (ds.images, ds.labels) if model.config.num_classes else ds.images,
        step=gan.train_step,
        lr=args.lr,
        betas=betas,
        batch_size=args.batch_size,
        transform=lambda x, generator=None: data.to_square(x, args.size),
        eval_fn=measure if args.eval_minutes else None,
        **common.budget(args),
    )
    common.stop_if_interrupted(history)
    model = model.cpu().eval()
    curve = [{k: round(v, 4) for k, v in e.items()} for e in history.evals[:-1]]
    found = {
        **common.trained(history),
        "data": args.data,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        **quality(model, args),
        **({"curve": curve} if curve else {}),
    }
    print(", ".join(f"{k} {v}" for k, v in found.items()))
    return common.finish(model, args, found, half=True)


def quality(model, args, n: int = 10_000, **sampling) -> dict:
    """FID, precision and recall against the test set, and for a conditional model how
    often classifier-mnist names the class asked for. Empty without that network.
    `sampling`: keywords for the model's `sample` (a diffusion model's sampler and steps)."""
    try:
        net = metrics.feature_network()
    except hub.CheckpointError:
        return {}
    digits = args.data in ("mnist", "mnist5k")
    if net.config.shape != model.config.shape[:1] + (28, 28) or not digits:
        return {}
    test = data.load(args.data, "test", fallback=args.fallback)
    if isinstance(model, StyleGAN):
        sampling = {"noise": "random", **sampling}  # as in training
    fake = model.sample(n, generator=torch.Generator().manual_seed(args.seed), **sampling).cpu()
    size = model.config.shape[-1]
    crop = slice((size - 28) // 2, (size + 28) // 2)
    fake = fake[..., crop, crop]
    real_f = metrics.extract_features(test.images, net)
    fake_f = metrics.extract_features(fake, net)
    pr = metrics.precision_recall(real_f, fake_f)
    found = {
        "fid_test": round(metrics.fid_from_features(real_f, fake_f), 3),
        "precision": round(pr["precision"], 4),
        "recall": round(pr["recall"], 4),
        "quality_samples": f"{n} samples vs {len(test)} test images, classifier-mnist features",
    }
    k = model.config.num_classes
    if k:
        found["class_agreement"] = round(metrics.accuracy(net, fake, torch.arange(n) % k), 4)
    if k and getattr(args, "cas_steps", 0):
        labels = torch.arange(50_000) % k
        g = torch.Generator().manual_seed(args.seed + 1)
        generated = model.sample(50_000, generator=g, y=labels, **sampling).cpu()[..., crop, crop]
        cas = metrics.classification_accuracy_score(
            generated, labels, test.images, test.labels, steps=args.cas_steps, seed=args.seed
        )
        found["cas"] = round(cas, 4)
        found["cas_protocol"] = f"50000 generated, {args.cas_steps} classifier steps"
    return found


def evaluate(model, args) -> str:
    """No likelihood: the samples are judged (FID, precision, recall)."""
    found = quality(model, args, n=max(args.n, 1000))
    if not found:
        raise ValueError(
            f"{args.name} has no likelihood, and judging its samples needs the "
            "classifier-mnist features and MNIST-sized data"
        )
    return "(no likelihood) " + ", ".join(f"{k} {v}" for k, v in found.items())
