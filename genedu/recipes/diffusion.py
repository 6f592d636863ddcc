"""`genedu train diffusion`: DDPM or flow matching on one small U-Net (genedu.diffusion),
trained by the one loop, then judged by its samples as the GANs are: FID, precision
and recall on classifier-mnist features, and with --conditional how often the
classifier names the class asked for at the --guidance weight.

    genedu train diffusion --objective flow --conditional --minutes 25 --out runs/flow
    genedu train diffusion --objective ddpm --steps 20000 --out runs/ddpm
    genedu train latent-diffusion --vae vae-mnist --minutes 5 --out runs/latent

The samples behind the numbers are drawn as --sampler and --sample-steps say (flow:
Heun, 20 steps; DDPM: DDIM, 50 steps), and the checkpoint keeps that choice, so
`genedu eval` measures the same way.
"""

from __future__ import annotations

import torch

from .. import data, diffusion, train
from ..diffusion import DDPM, DDPM_SAMPLERS, FLOW_SAMPLERS, SCHEDULES, DiffusionConfig, FlowMatching
from ..latent_diffusion import LatentDiffusion, LatentDiffusionConfig
from . import common
from . import gan as judged_like_a_gan

MODELS = (DDPM, FlowMatching, LatentDiffusion)
DEFAULT_SAMPLING = {"flow": ("heun", 20), "ddpm": ("ddim", 50)}


def arguments(p) -> None:
    common.data_arguments(p, "mnist")
    p.add_argument("--objective", choices=["flow", "ddpm"], default="flow",
                   help="flow matching (velocity) or DDPM (noise)")  # fmt: skip
    common.option(p, "--hidden", DiffusionConfig, "hidden",
                  "width: the U-Net's channels at full resolution (twice that below)")  # fmt: skip
    p.add_argument("--conditional", action="store_true", help="condition on the class")
    common.option(p, "--p-uncond", DiffusionConfig, "p_uncond",
                  "conditional: the share of examples trained without their class")  # fmt: skip
    p.add_argument("--ema", type=float, default=0.999,
                   help="decay of the weights' moving average that samples (0: none)")  # fmt: skip
    common.option(p, "--timesteps", DiffusionConfig, "timesteps", "ddpm: T")
    common.option(p, "--schedule", DiffusionConfig, "schedule", "ddpm: the betas",
                  choices=SCHEDULES)  # fmt: skip
    p.add_argument("--sampler", choices=[*FLOW_SAMPLERS, *DDPM_SAMPLERS],
                   help="of the measured samples (default: heun; ddpm: ddim)")  # fmt: skip
    p.add_argument("--sample-steps", type=int, default=None,
                   help="steps of that sampler (default: 20 for flow, 50 for ddim)")  # fmt: skip
    p.add_argument("--guidance", type=float, default=1.0,
                   help="conditional: the guidance weight of the measured samples")  # fmt: skip
    p.add_argument("--quality-samples", type=int, default=10_000,
                   help="samples behind FID, precision and recall")  # fmt: skip
    common.run_arguments(p, steps=10_000, lr=1e-3, batch=128)


def sampling(model, args) -> dict:
    """The sample keywords of the measurement: the flags, else the family's defaults."""
    objective = "ddpm" if isinstance(model, DDPM) else "flow"
    sampler, steps = DEFAULT_SAMPLING[objective]
    sampler = getattr(args, "sampler", None) or sampler
    valid = FLOW_SAMPLERS if objective == "flow" else DDPM_SAMPLERS
    if sampler not in valid:
        raise ValueError(f"--sampler {sampler}: {objective} samples with one of {valid}")
    found = {"sampler": sampler, "steps": getattr(args, "sample_steps", None) or steps}
    if sampler == "ancestral":
        found["steps"] = None  # all T
    if model.config.num_classes:
        found["guidance"] = getattr(args, "guidance", 1.0)
    return found


def fit(model, args, ds, classes: int, how: dict):
    """Train with the one loop and diffusion's step (the EMA after each Adam step); at
    each --eval-minutes mark, FID and the rest on 2,000 samples (the curve)."""
    dev = common.device(args)

    def measure(m) -> dict:
        n = min(2000, args.quality_samples)
        found = {k: v for k, v in judged_like_a_gan.quality(m, args, n, **how).items()
                 if isinstance(v, float)}  # fmt: skip
        print(f"  quality during training ({n} samples): {found}", flush=True)
        return found

    history = train.fit(
        model.to(dev),
        (ds.images, ds.labels) if classes else ds.images,
        step=diffusion.train_step,
        lr=args.lr,
        batch_size=args.batch_size,
        lr_schedule=train.warmup_cosine(),
        device=dev,
        eval_fn=measure if args.eval_minutes else None,
        **common.budget(args),
    )
    common.stop_if_interrupted(history)
    curve = [{k: round(v, 4) for k, v in e.items()} for e in history.evals[:-1]]
    found = {
        **common.trained(history),
        **({"curve": curve} if curve else {}),
        "data": args.data,
        "device": str(dev),
        "threads": torch.get_num_threads(),
    }
    return model.cpu().eval(), found


def classes_of(args, ds) -> int:
    if not getattr(args, "conditional", False):
        return 0
    if ds.labels is None:
        raise ValueError(f"--conditional needs class labels, and {ds.name} has none")
    return int(ds.labels.max()) + 1


def run(args):
    train.seed_everything(args.seed)
    ds = data.load(args.data, "train", fallback=args.fallback)
    classes = classes_of(args, ds)
    config = DiffusionConfig(
        shape=tuple(ds.images.shape[1:]),
        hidden=args.hidden,
        num_classes=classes,
        p_uncond=args.p_uncond,
        timesteps=args.timesteps,
        schedule=args.schedule,
        ema_decay=args.ema,
    )
    model = (FlowMatching if args.objective == "flow" else DDPM)(config)
    how = sampling(model, args)
    model, found = fit(model, args, ds, classes, how)
    found |= {
        "sampling": how,
        **judged_like_a_gan.quality(model, args, args.quality_samples, **how),
    }
    print(", ".join(f"{k} {v}" for k, v in found.items()))
    return common.finish(model, args, found)


def latent_arguments(p) -> None:
    common.data_arguments(p, "mnist")
    common.option(
        p, "--vae", LatentDiffusionConfig, "vae", "the shipped VAE whose codes are learned"
    )
    common.option(p, "--hidden", LatentDiffusionConfig, "hidden", "width: the MLP's units")
    common.option(p, "--layers", LatentDiffusionConfig, "layers", "the MLP's residual layers")
    p.add_argument("--conditional", action="store_true", help="condition on the class")
    p.add_argument("--ema", type=float, default=0.999, help="decay of the weights' moving average")
    p.add_argument(
        "--sampler", choices=FLOW_SAMPLERS, help="of the measured samples (default: heun)"
    )
    p.add_argument(
        "--sample-steps", type=int, default=None, help="that sampler's steps (default: 20)"
    )
    p.add_argument("--guidance", type=float, default=1.0, help="conditional: the guidance weight")
    p.add_argument("--quality-samples", type=int, default=10_000,
                   help="samples behind FID, precision and recall (the VAE's too)")  # fmt: skip
    common.run_arguments(p, steps=5_000, lr=1e-3, batch=256)


def run_latent(args):
    """Flow matching on the VAE's codes, then judged beside the VAE sampled from its prior."""
    train.seed_everything(args.seed)
    ds = data.load(args.data, "train", fallback=args.fallback)
    classes = classes_of(args, ds)
    config = LatentDiffusionConfig(vae=args.vae, hidden=args.hidden, layers=args.layers,
                                   num_classes=classes, ema_decay=args.ema)  # fmt: skip
    model = LatentDiffusion(config)
    how = sampling(model, args)
    model, found = fit(model, args, ds, classes, how)
    found |= {
        "sampling": how,
        **judged_like_a_gan.quality(model, args, args.quality_samples, **how),
    }
    prior = judged_like_a_gan.quality(model.vae, args, args.quality_samples, mean=True)
    found |= {f"vae_prior_{k}": v for k, v in prior.items() if isinstance(v, float)}
    print(", ".join(f"{k} {v}" for k, v in found.items()))
    return common.finish(model, args, found)


def evaluate(model, args) -> str:
    """No likelihood for images here: the samples are judged as the checkpoint's were."""
    how = getattr(args, "recorded", {}).get("sampling") or sampling(model, args)
    found = judged_like_a_gan.quality(model, args, n=max(args.n, 1000), **how)
    if not found:
        raise ValueError(
            f"{args.name}: judging its samples needs the classifier-mnist features and "
            "MNIST-sized data"
        )
    return f"(sampled with {how}) " + ", ".join(f"{k} {v}" for k, v in found.items())
