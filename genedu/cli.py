"""The `genedu` command: data, train, sample, eval.

    genedu data list                 every dataset, where it comes from, whether it is here
    genedu data fetch mnist          download (or find) and verify
    genedu data verify               check the checksum of every present file
    genedu train mixture --data mnist --out runs/mixture-mnist
    genedu train vae --data mnist --steps 20000 --out runs/vae-mnist
    genedu sample mixture-mnist --n 64 --out samples.png
    genedu eval mixture-mnist --data mnist
    genedu eval augmentation --labels 100 --seed 0    every arm of the chapter-8 experiment
    genedu eval anomaly --method vae --digit 3       one-class AUROC (chapter 9); --method ood
    genedu style --content chelsea --style flower --out cat.png    style transfer (photo or file)

Each model family adds its recipe to TRAINERS as it lands.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from . import data, hub, metrics, train
from .distributed import is_main


def _cmd_data(args) -> int:
    if args.action == "list":
        rows = data.list_datasets(args.root)
        widths = [max(len(r[k]) for r in rows) for k in ("name", "kind", "shape")]
        for r in rows:
            print(
                f"{r['name']:<{widths[0]}}  {r['kind']:<{widths[1]}}  {r['shape']:<{widths[2]}}  "
                f"{r['status']}\n{'':<{widths[0]}}  {r['description']}; split: {r['split']}"
                f"\n{'':<{widths[0]}}  terms: {r['terms']}"
            )
        return 0
    names = args.names or [n for n, e in data.REGISTRY.items() if not e.embedded]
    failed = 0
    for name in names:
        entry = data.get_entry(name)
        if entry.embedded:
            print(f"{name}: bundled with an installed package, nothing to fetch")
            continue
        try:
            if args.action == "fetch":
                paths = data.fetch(name, root=args.root)
                print(f"{name}: ok ({next(iter(paths.values())).parent})")
            else:  # verify: only what is present
                found = data.locate(entry, args.root)
                if found is None:
                    print(f"{name}: not present")
                    continue
                for spec in entry.files:
                    data.verify(found[spec.filename], spec, name)
                print(f"{name}: ok ({len(found)} files verified)")
        except data.DataError as err:
            failed += 1
            print(f"{name}: {err}", file=sys.stderr)
    return 1 if failed else 0


def _binary_images(name: str, split: str, fallback: str | None) -> torch.Tensor:
    ds = data.load(name, split, fallback=fallback)
    return data.binarize(ds.images, threshold=0.5)


def _train_mixture(args):
    from .baselines import BernoulliMixture, MixtureConfig

    train.seed_everything(args.seed)
    x = _binary_images(args.data, "train", args.fallback)
    model = BernoulliMixture(MixtureConfig(components=args.components, shape=tuple(x.shape[1:])))
    curve = model.fit_em(
        x, iterations=args.steps or 30, generator=torch.Generator().manual_seed(args.seed)
    )
    test = _binary_images(args.data, "test", args.fallback)
    nll = metrics.mean_nll(model.log_prob, test)
    found = {
        "test_nll_nats": round(nll, 3),
        "test_bits_per_dim": round(metrics.bits_per_dim(nll, test[0].numel()), 4),
        "train_ll_nats": round(curve[-1], 3),
        "data": f"{args.data} (binarised at 0.5)",
    }
    print(f"test NLL {found['test_nll_nats']} nats, {found['test_bits_per_dim']} bits/dim")
    return hub.save(model, args.out, metrics=found, command=_command_line(args))


def binarised_digits(dataset: str) -> bool:
    """Whether a family's default likelihood for `dataset` is Bernoulli on binarised pixels:
    the MNIST digits only (Fashion-MNIST's grey levels carry the garment's texture)."""
    return dataset in ("mnist", "mnist5k")


def _train_vae(args):
    """A VAE on `--data`: Bernoulli on dynamically binarised digits, Gaussian on grey levels."""
    from .vae import VAE, VAEConfig, mean_neg_elbo

    train.seed_everything(args.seed)
    train_set = data.load(args.data, "train", fallback=args.fallback)
    images = _one_class(train_set, args.digit).images
    likelihood = args.likelihood or ("bernoulli" if binarised_digits(args.data) else "gaussian")
    config = VAEConfig(
        shape=tuple(images.shape[1:]),
        latent_dim=args.latent,
        hidden=args.hidden,
        likelihood=likelihood,
        architecture=args.architecture,
        beta=args.beta,
        min_sigma=args.min_sigma,
    )
    model = VAE(config)
    # Bernoulli: a fresh binarisation of every batch (dynamic binarisation);
    # Gaussian: grey levels in [0, 1].
    transform = data.binarize if likelihood == "bernoulli" else None
    history = train.fit(
        model,
        images,
        steps=args.steps or 10_000,
        lr=args.lr,
        batch_size=args.batch_size,
        transform=transform,
        seed=args.seed,
        device=train.device() if args.device == "auto" else args.device,
        checkpoint=f"{args.out}-training",
        checkpoint_every=1000,
        resume=True,
    )
    model = model.cpu()  # measured on the CPU, where the test images are
    test_set = data.load(args.data, "test", fallback=args.fallback)
    test = _one_class(test_set, args.digit).images
    g = torch.Generator().manual_seed(args.seed)
    x = data.binarize(test, generator=g) if likelihood == "bernoulli" else data.to_unit(test)
    model.eval()
    elbo = -mean_neg_elbo(model, x, generator=g)
    iwae = model.log_prob(x[:1000], k=100, generator=g).mean().item()
    found = {
        "test_neg_elbo_nats": round(-elbo, 3),
        "test_nll_iwae100_first1000_nats": round(-iwae, 3),
        "train_seconds": round(history.seconds[-1], 1) if history.seconds else 0.0,
        "data": f"{args.data} ({'dynamically binarised' if transform else 'grey levels'})",
    }
    if args.digit is not None:  # a one-class model: how well it flags the other digits
        from .apps import anomaly

        run = anomaly.one_class(args.digit, method="vae", model=model, seed=args.seed,
                                test_set=test_set)  # fmt: skip
        found |= {"digit": args.digit, "train_images": len(images),
                  "test_images_of_digit": len(test), "one_class_test_auroc": round(run.auroc, 4),
                  "one_class_test_auroc_corrected": round(run.corrected_auroc, 4)}  # fmt: skip
        print(f"one-class AUROC (the other digits as anomalies, all {len(test_set)} test "
              f"images): {run.auroc:.4f}, PNG-corrected {run.corrected_auroc:.4f}")  # fmt: skip
    print(f"test -ELBO {-elbo:.2f} nats; NLL (IWAE k=100, first 1,000) {-iwae:.2f} nats")
    saved = hub.save(model, args.out, metrics=found, command=_command_line(args), half=True)
    train.discard_training_state(f"{args.out}-training")  # the resumable state, now spent
    return saved


def _one_class(ds: data.ImageSet, digit: int | None) -> data.ImageSet:
    """`ds` itself, or with --digit only the images of that class (a one-class model)."""
    if digit is None:
        return ds
    if ds.labels is None or not (ds.labels == digit).any():
        raise ValueError(f"--digit {digit}: {ds.name} {ds.split} has no images labelled {digit}")
    keep = ds.labels == digit
    return dataclasses.replace(ds, images=ds.images[keep], labels=ds.labels[keep])


def _train_classifier(args):
    """The feature network behind FID: a small CNN classifier on `--data`."""
    images = data.load(args.data, "train", fallback=args.fallback)
    if images.labels is None:
        raise ValueError(f"{args.data} has no labels to train a classifier on")
    dev = train.device() if args.device == "auto" else torch.device(args.device)
    config = metrics.ClassifierConfig(
        shape=images.shape, num_classes=int(images.labels.max()) + 1, hidden=args.hidden
    )
    model, history = metrics.train_classifier(
        images.images,
        images.labels,
        steps=args.steps or 3000,
        config=config,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        device=dev,
    )
    model = model.cpu()
    test = data.load(args.data, "test", fallback=args.fallback)
    acc = metrics.accuracy(model, test.images, test.labels)
    found = {
        "test_accuracy": round(acc, 4),
        "test_images": len(test),
        "train_seconds": round(history.seconds[-1], 1) if history.seconds else 0.0,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "data": args.data,
    }
    print(f"test accuracy {acc:.4f} on {len(test)} images")
    return hub.save(model, args.out, metrics=found, command=_command_line(args), half=True)


def _train_cvae(args):
    """The augmentation experiment's conditional VAE on a balanced labelled subset of
    `--data` (with --semi, plus the pseudo-labelled rest), trained and measured (CAS) as
    `genedu.apps.augmentation.run` does."""
    from .apps import augmentation as aug

    train.seed_everything(args.seed)
    train_set = data.load(args.data, "train", fallback=args.fallback)
    test_set = data.load(args.data, "test", fallback=args.fallback)
    defaults = aug.AugmentationConfig()
    steps = args.steps or (defaults.semi_steps if args.semi else defaults.generator_steps)
    config = aug.AugmentationConfig(
        labels=args.labels, generator_hidden=args.hidden, latent_dim=args.latent,
        generator_steps=steps, semi_steps=steps,
    )  # fmt: skip
    model, found = aug.reference_generator(
        train_set, test_set, config, semi=args.semi, seed=args.seed
    )
    extra = ", + pseudo-labels" if args.semi else ""
    found["data"] = f"{train_set.name} ({args.labels} labels{extra})"
    print(", ".join(f"{k} {v}" for k, v in found.items()))
    return hub.save(model, args.out, metrics=found, command=_command_line(args), half=True)


def _gan_images(args, split: str):
    """(the image set, a transform to floats in [0, 1] of --size × --size)."""
    ds = data.load(args.data, split, fallback=args.fallback)
    data.to_square(ds.images[:1], args.size)  # a size it cannot reach fails here, clearly
    return ds, lambda x, generator=None: data.to_square(x, args.size)


def _train_gan(args):
    """A DCGAN (or with `cdcgan`, a class-conditional one) on `--data`, then measured."""
    from . import gan

    train.seed_everything(args.seed)
    ds, transform = _gan_images(args, "train")
    conditional = args.model == "cdcgan"
    if conditional and ds.labels is None:
        raise ValueError(f"cdcgan needs labels; {args.data} has none")
    shape = (ds.shape[0], args.size, args.size)  # checked by the config: a clear error
    betas = (0.5, 0.999)  # DCGAN's Adam
    if args.model == "stylegan":
        from .stylegan import StyleGAN, StyleGANConfig

        config = StyleGANConfig(
            shape=shape,
            latent_dim=args.latent,
            w_dim=args.latent,
            max_channels=args.hidden,
            augment=args.augment,
            loss=args.loss,
            **({"r1_gamma": args.r1} if args.r1 is not None else {}),
            **({"ema_decay": args.ema} if args.ema is not None else {}),
        )
        model, betas = StyleGAN(config), (0.0, 0.99)  # StyleGAN2's Adam
    else:
        config = gan.GANConfig(
            shape=shape,
            latent_dim=args.latent,
            hidden=args.hidden,
            num_classes=int(ds.labels.max()) + 1 if conditional else 0,
            conditioning=args.conditioning,
            loss=args.loss,
            r1_gamma=args.r1 or 0.0,
            ema_decay=0.999 if args.ema is None else args.ema,
        )
        model = gan.GAN(config)
    dev = train.device() if args.device == "auto" else torch.device(args.device)
    model = model.to(dev)

    def measure(m) -> dict:  # the quality curve: at each --eval-minutes mark of training
        found = {k: v for k, v in _gan_quality(m, args).items() if isinstance(v, float)}
        print(f"  quality during training: {found}", flush=True)
        return found

    history = train.fit(
        model,
        (ds.images, ds.labels) if conditional else ds.images,
        step=gan.train_step,
        steps=args.steps or 10_000,
        lr=args.lr,
        betas=betas,
        batch_size=args.batch_size,
        transform=transform,
        seed=args.seed,
        max_seconds=args.minutes * 60 if args.minutes else None,
        eval_fn=measure if args.eval_minutes else None,
        eval_at_seconds=[m * 60 for m in args.eval_minutes],
        checkpoint=f"{args.out}-training",
        checkpoint_every=1000,
        resume=True,
    )
    model = model.cpu().eval()
    curve = [{k: round(v, 4) for k, v in e.items()} for e in history.evals[:-1]]
    found = {
        "steps": history.steps[-1] + 1 if history.steps else 0,
        "train_seconds": round(history.seconds[-1], 1) if history.seconds else 0.0,
        "data": args.data,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        **_gan_quality(model, args),
        **({"curve": curve} if curve else {}),
    }
    print(", ".join(f"{k} {v}" for k, v in found.items()))
    saved = hub.save(model, args.out, metrics=found, command=_command_line(args), half=True)
    train.discard_training_state(f"{args.out}-training")  # the resumable state, now spent
    return saved


def _gan_quality(model, args, n: int = 10_000) -> dict:
    """FID, precision and recall against the test set, and for a conditional GAN how
    often classifier-mnist names the class asked for. Empty without that network."""
    try:
        net = metrics.feature_network()
    except hub.CheckpointError:
        return {}
    if net.config.shape != model.config.shape[:1] + (28, 28) or args.data not in (
        "mnist",
        "mnist5k",
    ):
        return {}  # fmt: skip
    test = data.load(args.data, "test", fallback=args.fallback)
    fresh = {"noise": "random"} if hasattr(model, "mix") else {}  # StyleGAN: as in training
    fake = model.sample(n, generator=torch.Generator().manual_seed(args.seed), **fresh).cpu()
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
        asked = torch.arange(n) % k
        found["class_agreement"] = round(metrics.accuracy(net, fake, asked), 4)
    if k and getattr(args, "cas_steps", 0):
        labels = torch.arange(50_000) % k
        g = torch.Generator().manual_seed(args.seed + 1)
        generated = model.sample(50_000, generator=g, y=labels, mean=True).cpu()[..., crop, crop]
        cas = metrics.classification_accuracy_score(
            generated, labels, test.images, test.labels, steps=args.cas_steps, seed=args.seed
        )
        found["cas"] = round(cas, 4)
        found["cas_protocol"] = f"50000 generated, {args.cas_steps} classifier steps"
    return found


def _pixel_test_set(args, likelihood: str, n: int):
    """The first n test images as the model reads them (binarised with a fixed seed)."""
    test = data.load(args.data, "test", fallback=args.fallback)
    images, labels = test.images[:n], test.labels
    g = torch.Generator().manual_seed(args.seed)
    x = data.binarize(images, generator=g) if likelihood == "bernoulli" else data.to_unit(images)
    return x, None if labels is None else labels[:n]


def _train_pixelcnn(args):
    """A PixelCNN on `--data`: Bernoulli on dynamically binarised digits, else 256 levels."""
    from .pixelcnn import GatedPixelCNN, PixelCNN, PixelCNNConfig

    train.seed_everything(args.seed)
    ds = data.load(args.data, "train", fallback=args.fallback)
    likelihood = args.likelihood or ("bernoulli" if binarised_digits(ds.name) else "logistic")
    binary = likelihood == "bernoulli"
    if likelihood == "gaussian":
        raise ValueError("a PixelCNN's likelihood is bernoulli, categorical or logistic")
    classes = 0
    if args.conditional and ds.labels is not None:
        classes = len(ds.classes) if ds.classes else int(ds.labels.max()) + 1
    if args.conditional and not classes:
        raise ValueError(f"--conditional needs class labels, and {ds.name} has none")
    config = PixelCNNConfig(
        shape=tuple(ds.images.shape[1:]),
        channels=args.hidden,
        layers=args.layers,
        likelihood=likelihood,
        num_classes=classes,
        **({"mixtures": args.mixtures} if args.mixtures else {}),
    )
    plain = args.architecture == "plain"
    model = (PixelCNN if plain else GatedPixelCNN)(config)
    x_test, y_test = _pixel_test_set(args, likelihood, args.n_test)

    if classes and y_test is None:
        raise ValueError(f"--conditional: the test split of {ds.name} has no labels")

    def measure(model) -> dict[str, float]:  # the marginal log p(x) when conditional
        x = x_test.to(next(model.parameters()).device)
        nll = metrics.mean_nll(model.log_prob, x, batch_size=250)
        return {"test_nll_nats": round(nll, 3)}

    marks = [60 * m for m in args.eval_minutes]
    history = train.fit(
        model,
        (ds.images, ds.labels) if classes else ds.images,
        steps=args.steps or 1_000_000,
        lr=args.lr,
        batch_size=args.batch_size,
        transform=data.binarize if binary else None,
        seed=args.seed,
        device=train.device() if args.device == "auto" else args.device,
        checkpoint=f"{args.out}-training",
        checkpoint_every=500,
        resume=True,
        eval_fn=measure if marks else None,
        eval_at_seconds=marks,
        max_seconds=None if args.minutes is None else 60 * args.minutes,
    )
    model = model.cpu().eval()
    with torch.no_grad():  # fit measured the end already when it kept a curve
        found = _eval_numbers(history.evals[-1]) if history.evals else measure(model)
        if classes:
            nll_y = -sum(
                model.log_prob(x_test[i : i + 250], y=y_test[i : i + 250]).sum().item()
                for i in range(0, len(x_test), 250)
            )
            found["test_nll_given_class_nats"] = round(nll_y / len(x_test), 3)
    dims = x_test[0].numel()
    found |= {
        "test_bits_per_dim": round(metrics.bits_per_dim(found["test_nll_nats"], dims), 4),
        "test_images": len(x_test),
        "train_steps": history.steps[-1] + 1 if history.steps else 0,
        "train_seconds": round(history.seconds[-1], 1) if history.seconds else 0.0,
        "curve": [
            {"minutes": round(e["seconds"] / 60, 2), "step": e["step"], **_eval_numbers(e)}
            for e in history.evals
        ],
        "data": f"{ds.name} ({'dynamically binarised' if binary else '256 levels'})",
    }
    print(
        f"test NLL {found['test_nll_nats']} nats, {found['test_bits_per_dim']} bits/dim "
        f"(first {len(x_test)} test images) after {found['train_seconds']} s"
    )
    saved = hub.save(model, args.out, metrics=found, command=_command_line(args))
    train.discard_training_state(f"{args.out}-training")  # the resumable state, now spent
    return saved


def _char_model(args, corpus):
    """The model `genedu train char` builds: --architecture transformer, gru, lstm or ngram."""
    from . import text

    common = {"vocab": corpus.vocab.chars, "boundary": corpus.boundary}
    block = max(args.block_size or 0, corpus.longest) or 128
    if args.architecture == "ngram":
        return text.NGram(text.NGramConfig(**common, order=args.order))
    if args.architecture in text.CELLS:
        config = text.RNNConfig(
            **common, cell=args.architecture, hidden=args.hidden, layers=args.layers,
            block_size=block,
        )  # fmt: skip
        return text.CharRNN(config)
    if args.architecture != "transformer":
        raise ValueError(
            f"char: --architecture transformer, gru, lstm or ngram, not {args.architecture}"
        )
    config = text.TransformerConfig(
        **common, block_size=block, n_layer=args.layers, n_head=args.heads,
        n_embd=args.hidden, dropout=args.dropout,
    )  # fmt: skip
    return text.CharTransformer(config)


def _train_char(args):
    """A character model on a text set (names: one per line; prose), then its held-out
    nats per character."""
    from . import text

    train.seed_everything(args.seed)
    split = (data.load(args.data, s, fallback=args.fallback) for s in ("train", "test"))
    corpus = text.Corpus(*split)
    model = _char_model(args, corpus)
    block = getattr(model.config, "block_size", 128)
    rows, transform = corpus.train_data(block)
    test = corpus.test_rows(block)
    history, started = None, time.perf_counter()
    if isinstance(model, text.NGram):
        model.count(rows if transform is None else transform.ids[None])
    else:
        dev = train.device() if args.device == "auto" else torch.device(args.device)
        # a fixed --steps decays the rate on a cosine; --minutes alone holds it after warm-up
        steps = args.steps or (10**9 if args.minutes else 5000)

        def measure(m) -> dict[str, float]:
            return {"test_nats_per_char": round(text.nats_per_char(m, test), 4)}

        history = train.fit(
            model.to(dev),
            rows,
            steps=steps,
            batch_size=args.batch_size,
            transform=transform,
            optimizer=torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99)),
            lr_schedule=train.warmup_cosine(steps, warmup=min(100, max(1, steps // 10))),
            grad_clip=1.0,
            seed=args.seed,
            eval_fn=measure,
            eval_at_seconds=[60 * m for m in args.eval_minutes],
            max_seconds=None if args.minutes is None else 60 * args.minutes,
            checkpoint=f"{args.out}-training",
            checkpoint_every=500,
            resume=True,
        )
        model = model.cpu().eval()
    found = {
        "test_nats_per_char": round(text.nats_per_char(model, test), 4),
        "test_chars": int((test[:, 1:] >= 0).sum()),
        "train_seconds": round(
            history.seconds[-1] if history else time.perf_counter() - started, 1
        ),
        "steps": history.steps[-1] + 1 if history and history.steps else 0,
        "data": corpus.name,
        "threads": torch.get_num_threads(),
    }
    if history and history.evals[:-1]:
        found["curve"] = [
            {"minutes": round(e["seconds"] / 60, 2), "step": e["step"], **_eval_numbers(e)}
            for e in history.evals[:-1]
        ]
    if corpus.boundary:  # names: how many of 200 samples are new (and not empty)
        names = text.generate(model, "", 40, num_samples=200,
                              generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
        known = set(corpus.train.lines)
        found["new_names_of_200"] = sum(bool(n) and n not in known for n in names)
    print(", ".join(f"{k} {v}" for k, v in found.items() if k != "curve"))
    saved = hub.save(model, args.out, metrics=found, command=_command_line(args))
    train.discard_training_state(f"{args.out}-training")  # the resumable state, now spent
    return saved


def _eval_numbers(record: dict) -> dict:
    """An evaluation record's measurements, without its step and time."""
    return {k: v for k, v in record.items() if k not in ("step", "seconds")}


def _command_line(args) -> str:
    """How this run was invoked, as `genedu ...`, with no path of this machine in it: an
    absolute path keeps only its last part (an absolute ``--out`` becomes the checkpoint's
    name)."""

    def portable(arg: str) -> str:
        flag, eq, value = arg.rpartition("=") if arg.startswith("--") else ("", "", arg)
        return f"{flag}{eq}{Path(value).name}" if os.path.isabs(value) else arg

    return " ".join(["genedu", *(shlex.quote(portable(a)) for a in args.argv)])


TRAINERS = {
    "mixture": (_train_mixture, "a mixture of independent Bernoulli images, fitted by EM"),
    "vae": (_train_vae, "a variational autoencoder (genedu.vae), trained with Adam"),
    "classifier": (_train_classifier, "the CNN classifier whose features FID uses"),
    "cvae": (_train_cvae, "a conditional VAE on a few labels (--semi: + pseudo-labels)"),
    "dcgan": (_train_gan, "a DCGAN (genedu.gan), two players, two Adams"),
    "cdcgan": (_train_gan, "a class-conditional DCGAN (one-hot label maps into D)"),
    "stylegan": (_train_gan, "a StyleGAN (genedu.stylegan): mapping network, styles, noise"),
    "pixelcnn": (_train_pixelcnn, "a gated PixelCNN (genedu.pixelcnn), exact likelihood"),
    "char": (_train_char, "a character model (genedu.text): transformer, GRU, LSTM or n-gram"),
}


DEFAULTS = {  # model: (lr, batch size, latent, hidden)
    "mixture": (1e-3, 128, 32, 32),
    "vae": (1e-3, 128, 32, 32),
    "classifier": (2e-3, 128, 0, 32),
    "cvae": (2e-3, 128, 16, 256),  # the augmentation experiment's (its lr and batch are fixed)
    "dcgan": (2e-4, 64, 64, 64),
    "cdcgan": (2e-4, 64, 64, 64),
    "stylegan": (2e-3, 32, 64, 64),
    "pixelcnn": (2e-3, 64, 0, 32),
    "char": (2e-3, 64, 0, 128),
}


def _cmd_train(args) -> int:
    fn, _ = TRAINERS[args.model]
    lr, batch, latent, hidden = DEFAULTS[args.model]
    args.lr = args.lr if args.lr is not None else lr
    args.batch_size = args.batch_size or batch
    args.latent = args.latent or latent
    args.hidden = args.hidden or hidden
    args.size = args.size or (32 if args.model == "stylegan" else 28)
    args.data = args.data or ("names" if args.model == "char" else "mnist")
    args.architecture = args.architecture or ("transformer" if args.model == "char" else "conv")
    args.layers = args.layers or (4 if args.model == "char" else 8)
    print(f"saved {fn(args)}.safetensors")
    return 0


def _cmd_sample(args) -> int:
    from . import viz

    model = hub.load(args.name)
    g = torch.Generator().manual_seed(args.seed)
    if hasattr(model, "vocab"):  # a character model: text to the terminal
        from . import text

        boundary = model.config.boundary
        texts = text.generate(
            model, args.prompt, args.chars or (40 if boundary else 500),
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            num_samples=args.n if args.n is not None else (10 if boundary else 1), generator=g,
        )  # fmt: skip
        print(("\n" if boundary else "\n\n---\n\n").join(texts))
        return 0
    from .vae import VAE

    means = {"mean": True} if isinstance(model, VAE) else {}  # a VAE's usual picture
    images = model.sample(64 if args.n is None else args.n, generator=g, **means)
    fig = viz.image_grid(images.clamp(0, 1), nrow=args.nrow)
    fig.savefig(args.out, dpi=150, bbox_inches="tight")
    print(f"wrote {args.out}")
    return 0


def _eval_augmentation(args) -> int:
    """One seed of the augmentation experiment (genedu.apps.augmentation), as a table."""
    from .apps import augmentation as aug

    n = args.labels
    config = aug.AugmentationConfig(labels=n)
    if args.quick:  # seconds, to see every arm run; the numbers mean little
        config = aug.AugmentationConfig(
            labels=n, validation=200, classifier_steps=20, generator_steps=20,
            semi_steps=20, cas_samples=200,
        )  # fmt: skip
    name = args.data or "mnist"
    train_set = data.load(name, "train", fallback=args.fallback)
    test_set = data.load(name, "test", fallback=args.fallback)
    print(f"augmentation on {train_set.name}: {n} labels, seed {args.seed}"
          + (" (--quick budgets)" if args.quick else ""))  # fmt: skip
    result = aug.run(train_set, test_set, config, seed=args.seed)
    print(f"{'arm':<18} {'synthetic':>9} {'validation':>10} {'test':>7} {'corrupted':>9}"
          f" {'seconds':>8}")  # fmt: skip
    for arm, e in result["arms"].items():
        print(f"{arm:<18} {e['synthetic']:>9} {e['validation']:>10.4f} {e['test']:>7.4f} "
              f"{e['corrupted']:>9.4f} {e['seconds']:>8.1f}")  # fmt: skip
    print("CAS: " + ", ".join(f"{g} {v:.4f}" for g, v in result["cas"].items()))
    pseudo = result["pseudo_labels"]
    print(f"pseudo-labels: {pseudo['kept']} of {pseudo['unlabelled']} kept, "
          f"{pseudo['accuracy_of_kept']:.4f} of them right")  # fmt: skip
    return 0


def _eval_anomaly(args) -> int:
    """Chapter 9's experiments (genedu.apps.anomaly): one-class MNIST, or Fashion->MNIST."""
    from .apps import anomaly

    small = 500 if args.quick else None  # --quick: a few hundred images, to see it run
    if args.method == "ood":
        steps = args.steps or (20 if args.quick else 2000)
        result = anomaly.ood_fashion_mnist(
            train_size=small, test_size=small, steps=steps, seed=args.seed,
            background_steps=steps if args.background else 0,
        )  # fmt: skip
        print(f"trained on fashion-mnist ({steps} steps), mnist test as out-of-distribution:")
        for score, value in result.aurocs.items():
            print(f"  AUROC of {score:<17} {value:.4f}")
        return 0
    digits = range(10) if args.digit is None else [args.digit]
    steps = args.steps or (20 if args.quick else 1000)
    found = []
    for digit in digits:
        r = anomaly.one_class(digit, method=args.method, steps=steps, seed=args.seed,
                              train_size=small, test_size=small and 4 * small)  # fmt: skip
        found.append((r.auroc, r.corrected_auroc))
        extra = "" if r.corrected_auroc is None else f", PNG-corrected {r.corrected_auroc:.4f}"
        print(f"digit {digit}: {args.method} AUROC {r.auroc:.4f}{extra} "
              f"({r.train_images} training images, {r.train_seconds:.1f} s)")  # fmt: skip
    if len(found) > 1:
        raw = sum(a for a, _ in found) / len(found)
        extra = "" if found[0][1] is None else (
            f", PNG-corrected {sum(c for _, c in found) / len(found):.4f}")  # fmt: skip
        print(f"mean AUROC over {len(found)} digits: {raw:.4f}{extra}")
    return 0


def _cmd_complete(args) -> int:
    """Complete occluded MNIST test digits with each method; a PNG grid, and the scores."""
    from PIL import Image
    from tqdm.auto import tqdm

    from . import viz
    from .apps import completion

    test = data.load("mnist", "test", fallback=args.fallback)
    if not 1 <= args.n <= len(test.images):
        raise ValueError(f"--n must be in 1..{len(test.images)}, got {args.n}")
    g = torch.Generator().manual_seed(args.seed)
    x = data.binarize(test.images[: args.n], generator=g)
    known = completion.mask(args.mask, tuple(x.shape[2:]))
    methods = completion.METHODS if args.method == "all" else (args.method,)
    train_images = None
    if "neighbour" in methods:
        train = data.load("mnist", "train", fallback=args.fallback)
        train_images = data.binarize(train.images, generator=g)
    found, chunk = {}, 50
    jobs = [(m, i) for m in methods for i in range(0, args.n, chunk)]
    for method, i in tqdm(jobs, desc="completing", disable=args.no_progress):
        out, _ = completion.complete(method, x[i : i + chunk], known, samples=args.samples,
                                     seed=args.seed + i, train_images=train_images)  # fmt: skip
        found.setdefault(method, []).append(out)
    found = {m: torch.cat(parts) for m, parts in found.items()}
    classifier = hub.load("classifier-mnist")
    for method, out in found.items():
        s = completion.evaluate(out, x, known, test.labels[: args.n], classifier)
        print(f"{method:<10} read as the true digit {s.accuracy:.3f}, hidden pixels "
              f"right {s.agreement:.3f}, diversity {s.diversity:.3f} "
              f"({s.completions} completions)")  # fmt: skip
    shown = min(args.n, 16)
    images, ncol, names = completion.panel(
        x[:shown], known, {m: o[:shown] for m, o in found.items()}
    )
    grid = viz.make_grid(images, nrow=ncol)[0]
    out = Path(args.out)
    tmp = out.with_name(out.name + ".part")
    Image.fromarray((grid * 255).round().to(torch.uint8).numpy()).save(tmp, format="PNG")
    os.replace(tmp, out)
    print(f"wrote {out}: one digit per row; columns {', '.join(names)}")
    return 0


def _cmd_eval(args) -> int:
    if args.name == "augmentation":
        return _eval_augmentation(args)
    if args.name == "anomaly":
        return _eval_anomaly(args)
    model = hub.load(args.name)
    if hasattr(model, "vocab"):  # a character model: held-out nats per character
        from . import text

        if args.data is None:  # the text it was trained on, as its checkpoint records
            meta = json.loads(hub._files(hub._resolve(args.name))[1].read_text())
            args.data = meta.get("metrics", {}).get("data", "names")
        split = (data.load(args.data, s, fallback=args.fallback) for s in ("train", "test"))
        corpus = text.Corpus(*split)
        missing = set(corpus.vocab.chars) - set(model.vocab.chars)
        if missing:
            raise ValueError(f"{args.name} does not know {sorted(missing)} of {corpus.name}")
        corpus.vocab = model.vocab
        rows = corpus.test_rows(getattr(model.config, "block_size", 128))
        nats = text.nats_per_char(model, rows)
        print(f"{args.name} on {corpus.name} test: {nats:.4f} nats/char "
              f"({int((rows[:, 1:] >= 0).sum())} characters)")  # fmt: skip
        return 0
    args.data = args.data or "mnist"
    if isinstance(model, metrics.Classifier):
        test = data.load(args.data, "test", fallback=args.fallback)
        acc = metrics.accuracy(model, test.images, test.labels)
        print(f"{args.name} on {args.data} test: accuracy {acc:.4f} ({len(test)} images)")
        return 0
    if not hasattr(model, "log_prob"):  # a GAN: no likelihood, so its samples are judged
        found = _gan_quality(model, args, n=max(args.n, 1000))
        if not found:
            raise ValueError(
                f"{args.name} has no likelihood, and judging its samples needs the "
                "classifier-mnist features and MNIST-sized data"
            )
        shown = ", ".join(f"{k} {v}" for k, v in found.items())
        print(f"{args.name} (no likelihood) on {args.data} test: {shown}")
        return 0
    likelihood = getattr(getattr(model, "config", None), "likelihood", "bernoulli")
    if hasattr(model, "bits_per_dim"):  # a PixelCNN: measured the way its training did
        x, _ = _pixel_test_set(args, likelihood, args.n)  # binarised with --seed, as training
        nll = metrics.mean_nll(model.log_prob, x, batch_size=250)
        print(
            f"{args.name} on {args.data} test: NLL {nll:.3f} nats, "
            f"{metrics.bits_per_dim(nll, x[0].numel()):.4f} bits/dim (first {len(x)} images)"
        )
        return 0
    if hasattr(model, "elbo"):  # a VAE: measured the way `genedu train vae` measured it
        images = data.load(args.data, "test", fallback=args.fallback).images
        g = torch.Generator().manual_seed(args.seed)
        test = (
            data.binarize(images, generator=g)
            if likelihood == "bernoulli"
            else data.to_unit(images)
        )
        from .vae import mean_neg_elbo

        elbo = -mean_neg_elbo(model, test, generator=g)
        nll = -model.log_prob(test[: args.n], k=args.k, generator=g).mean().item()
        print(f"{args.name} on {args.data} test: -ELBO {-elbo:.3f} nats (all {len(test)}); "
              f"NLL (IWAE k={args.k}, first {min(args.n, len(test))}) {nll:.3f} nats")  # fmt: skip
        return 0
    test = _binary_images(args.data, "test", args.fallback)
    nll = metrics.mean_nll(model.log_prob, test)
    print(
        f"{args.name} on {args.data} test: NLL {nll:.3f} nats, "
        f"{metrics.bits_per_dim(nll, test[0].numel()):.4f} bits/dim"
    )
    return 0


def _cmd_style(args) -> int:
    """Style transfer (or, with --texture, texture synthesis) into a PNG (genedu.apps.style)."""
    from .apps import style

    look = style.load_image(args.style, args.size)
    if args.texture:
        result = style.texture(look, size=args.size, steps=args.steps, seed=args.seed)
    else:
        result = style.transfer(style.load_image(args.content, args.size), look,
                                steps=args.steps, style_weight=args.style_weight,
                                seed=args.seed)  # fmt: skip
    style.save_png(result.image, args.out)
    print(f"wrote {args.out}: style loss {result.style[0]:.4g} -> {result.style[-1]:.4g} "
          f"({100 * result.style_reduction:.1f}% less), {result.seconds:.1f} s")  # fmt: skip
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genedu", description="The genedu course toolkit.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="list, fetch and verify datasets")
    d.add_argument("action", choices=["list", "fetch", "verify"])
    d.add_argument("names", nargs="*", help="datasets (default: every downloadable one)")
    d.add_argument("--root", help="a data folder to search (and fetch into) first")
    d.set_defaults(func=_cmd_data)

    t = sub.add_parser("train", help="train a model and save a checkpoint")
    t.add_argument("model", choices=sorted(TRAINERS))
    t.add_argument("--data", default=None, help="a dataset (default: mnist; char: names)")
    t.add_argument("--fallback", default=None, help="embedded set to use if --data is absent")
    t.add_argument(
        "--steps", type=int, default=None, help="training steps (mixture: EM iterations, 30)"
    )
    t.add_argument("--components", type=int, default=50, help="mixture components")
    t.add_argument("--latent", type=int, default=None, help="latent dimensions (VAE 32, GAN 64)")
    t.add_argument(
        "--hidden", type=int, default=None, help="width: VAE 32, GAN 64, classifier 32 channels"
    )
    t.add_argument(
        "--architecture",
        choices=["conv", "mlp", "gated", "plain", "transformer", "gru", "lstm", "ngram"],
        default=None,
        help="VAE: conv or mlp; PixelCNN: gated (default) or plain; "
        "char: transformer (default), gru, lstm or ngram",
    )
    t.add_argument(
        "--likelihood",
        choices=["bernoulli", "gaussian", "categorical", "logistic"],
        default=None,
        help="VAE: bernoulli or gaussian; PixelCNN: bernoulli, categorical or logistic",
    )
    t.add_argument(
        "--layers", type=int, default=None, help="PixelCNN: gated or mask-B layers (8); char: 4"
    )
    t.add_argument(
        "--mixtures", type=int, default=None, help="PixelCNN logistic: mixture components (5)"
    )
    t.add_argument(
        "--digit", type=int, default=None, choices=range(10),
        help="VAE: train on this class only, a one-class model (chapter 9)",
    )  # fmt: skip
    t.add_argument("--heads", type=int, default=4, help="char transformer: attention heads")
    t.add_argument("--block-size", type=int, default=None, help="char: context length (prose 128)")
    t.add_argument("--order", type=int, default=5, help="char ngram: n")
    t.add_argument("--dropout", type=float, default=0.0, help="char transformer: dropout")
    t.add_argument("--conditional", action="store_true", help="PixelCNN: condition on the class")
    t.add_argument("--n-test", type=int, default=1000, help="PixelCNN: test images behind the NLL")
    t.add_argument("--labels", type=int, default=100, help="cvae: labelled images, balanced")
    t.add_argument("--semi", action="store_true", help="cvae: also the pseudo-labelled rest")
    t.add_argument("--beta", type=float, default=1.0, help="VAE weight on the KL")
    t.add_argument(
        "--min-sigma", type=float, default=1e-3, help="Gaussian VAE: floor on the decoder's scale"
    )
    t.add_argument(
        "--lr", type=float, default=None, help="default: 1e-3 (GANs 2e-4, classifier 2e-3)"
    )
    t.add_argument("--batch-size", type=int, default=None, help="default: 128 (GANs 64)")
    t.add_argument(
        "--size",
        type=int,
        default=None,
        help="GANs: the side images are pooled or padded to (DCGAN 28; StyleGAN 32, a power of 2)",
    )
    t.add_argument("--loss", choices=["minimax", "nonsaturating", "hinge"], default="nonsaturating")
    t.add_argument("--conditioning", choices=["input", "projection"], default="input")
    t.add_argument(
        "--r1", type=float, default=None, help="GANs: R1 penalty weight (DCGAN 0, StyleGAN 0.05)"
    )
    t.add_argument(
        "--ema", type=float, default=None, help="GANs: EMA decay of G (DCGAN 0.999, StyleGAN 0.998)"
    )
    t.add_argument(
        "--augment",
        default="",
        help='StyleGAN: DiffAugment policy for D, e.g. "color,translation,cutout" (small sets)',
    )
    t.add_argument(
        "--minutes", type=float, default=None, help="GANs, PixelCNN: stop after this much training"
    )
    t.add_argument(
        "--eval-minutes",
        type=float,
        nargs="*",
        default=[],
        help="GANs, PixelCNN: measure FID etc. (test NLL) when training has taken these minutes",
    )
    t.add_argument(
        "--cas-steps",
        type=int,
        default=0,
        help="cdcgan: also measure CAS, its classifier trained this many steps",
    )
    t.add_argument("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, ...")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="checkpoint path, without extension")
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser(
        "sample", help="draw samples from a checkpoint into a PNG grid (text: to the terminal)"
    )
    s.add_argument("name", help="a shipped name (see genedu.hub.list()) or a checkpoint path")
    s.add_argument("--n", type=int, default=None, help="samples: 64 images, 10 names, 1 text")
    s.add_argument("--prompt", default="", help="text: what to continue (names: the start)")
    s.add_argument("--chars", type=int, default=None, help="text: at most this many (40, 500)")
    s.add_argument("--temperature", type=float, default=1.0, help="text: 0 is greedy")
    s.add_argument("--top-k", type=int, default=None, help="text: keep the k likeliest")
    s.add_argument("--top-p", type=float, default=None, help="text: nucleus sampling")
    s.add_argument("--nrow", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples.png")
    s.set_defaults(func=_cmd_sample)

    e = sub.add_parser(
        "eval",
        help="test log-likelihood of a checkpoint (a GAN: FID, precision, recall), or "
        "an application experiment: augmentation, anomaly",
    )
    e.add_argument("name", help="a checkpoint, or augmentation, or anomaly")
    e.add_argument(
        "--data", default=None, help="default: mnist (a text model: the data it was trained on)"
    )
    e.add_argument("--fallback", default=None)
    e.add_argument("--k", type=int, default=100, help="VAE: importance samples per image")
    e.add_argument(
        "--n", type=int, default=1000, help="VAE: test images for IWAE; GAN: samples for FID"
    )
    e.add_argument("--seed", type=int, default=0, help="VAE: seed of binarisation and samples")
    e.add_argument("--labels", type=int, default=100, help="augmentation: labelled images")
    e.add_argument("--quick", action="store_true", help="augmentation, anomaly: tiny budgets")
    e.add_argument("--method", default="vae", choices=("vae", "pixelcnn", "pca", "ood"),
                   help="anomaly: a one-class score, or ood (fashion-mnist vs mnist)")  # fmt: skip
    e.add_argument("--digit", type=int, default=None, choices=range(10),
                   help="anomaly: the one class (default: each in turn)")  # fmt: skip
    e.add_argument("--steps", type=int, default=None, help="anomaly: training steps")
    e.add_argument("--background", action="store_true",
                   help="anomaly ood: also Ren's likelihood ratio (a second model)")  # fmt: skip
    e.set_defaults(func=_cmd_eval)

    y = sub.add_parser("style", help="style transfer (or texture synthesis) into a PNG")
    y.add_argument("--content", default="chelsea", help="a bundled photo's name or an image file")
    y.add_argument("--style", required=True, help="a bundled photo's name or an image file")
    y.add_argument("--out", required=True, help="the PNG to write")
    y.add_argument("--steps", type=int, default=100, help="L-BFGS steps")
    y.add_argument("--size", type=int, default=256, help="side of the (square) result")
    y.add_argument("--style-weight", type=float, default=100.0,
                   help="style against content (both losses start near 1)")  # fmt: skip
    y.add_argument("--seed", type=int, default=0, help="random features and initial noise")
    y.add_argument("--texture", action="store_true", help="texture synthesis: no content")
    y.set_defaults(func=_cmd_style)

    c = sub.add_parser("complete", help="complete occluded MNIST test digits (chapter 10)")
    c.add_argument("--method", default="all", choices=("all", "pixelcnn", "vae", "neighbour"))
    c.add_argument("--mask", default="bottom", choices=("bottom", "right", "centre"))
    c.add_argument("--n", type=int, default=8, help="test digits to complete")
    c.add_argument("--samples", type=int, default=4, help="completions per digit")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--fallback", default="mnist5k", help="offline: the bundled digits")
    c.add_argument("--no-progress", action="store_true")
    c.add_argument("--out", default="completions.png")
    c.set_defaults(func=_cmd_complete)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv = argv
    if not is_main():  # under torchrun, rank 0 alone prints and saves
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        return args.func(args)
    except (data.DataError, hub.CheckpointError, ValueError) as err:
        print(f"genedu: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
