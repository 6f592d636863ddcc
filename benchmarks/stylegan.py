"""The StyleGAN chapter's goals: StyleGAN against DCGAN on MNIST at 32×32, trained for
the same time in the same run, the truncation curve, and FID on faces.

    python benchmarks/stylegan.py                  # everything: about 50 minutes on 2 threads
    python benchmarks/stylegan.py --minutes 2 --n 2000   # a quick look
    python benchmarks/stylegan.py --judge-only     # the goal's verdict for results/stylegan.json

Goal (issue 6), on 2 CPU threads: after at most 20 training minutes, the StyleGAN's FID
on MNIST at 32×32 is at least as good as (no higher than) that of the DCGAN trained for
the same time in the same run. Both use the GAN chapter's loop (`genedu.train.fit` with
`gan.train_step`) and the DCGAN discriminator (the StyleGAN's with the minibatch-std
feature); each has its own recipe (DCGAN: Adam 2e-4, (0.5, 0.999), batch 64; StyleGAN:
the config's defaults, channels 64, 64, 32, 16 at 4, 8, 16, 32, a 2-layer mapping, and
Adam 2e-3, (0, 0.99), batch 32, lazy R1, style mixing in half the batches). The training
clock stops while a model is measured, so `wall_seconds` is training time only.

FID, precision and recall use genedu's feature network (the shipped classifier-mnist;
not comparable with Inception FID), on the central 28×28 of each 32×32 sample against
the n test images; StyleGAN samples draw fresh noise maps, as in training. The
truncation curve sweeps psi over 0.3, 0.5, 0.7 and 1.0 for the StyleGAN trained here
and for the shipped `stylegan-mnist`. The faces line measures the
shipped `stylegan-frey` in the same features, beside the floor of real training faces
against the test faces: with 196 test faces and a digit network it is a coarse number,
meaningful only next to its floor.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from common import record, rejudge, setup, verdict, write

from genedu import data, gan, hub, metrics, stylegan
from genedu.train import fit

SEED = 0
MNIST, FREY = "mnist (grey levels, padded to 32x32)", "frey (28x20 faces, padded to 32x32)"
DCGAN = gan.GANConfig(shape=(1, 32, 32), latent_dim=64, hidden=64, ema_decay=0.999)
STYLEGAN = stylegan.StyleGANConfig()  # the chapter's defaults: 32×32, 8 styled layers
RECIPES = {  # name: (config, lr, betas, batch size)
    "dcgan (genedu.gan, trained here)": (DCGAN, 2e-4, (0.5, 0.999), 64),
    "stylegan (genedu.stylegan, trained here)": (STYLEGAN, 2e-3, (0.0, 0.99), 32),
}
DCGAN_HERE, STYLEGAN_HERE = RECIPES
PSIS = (0.3, 0.5, 0.7, 1.0)
UNITS = {"fid": "fid", "precision": "share", "recall": "share"}


def pad32(x: torch.Tensor, generator=None) -> torch.Tensor:
    """uint8 MNIST (N, 1, 28, 28) -> floats (N, 1, 32, 32), padded with zeros (black)."""
    return F.pad(x.float() / 255, (2, 2, 2, 2))


def measure(images, real_features, net) -> dict[str, float]:
    """FID, precision and recall of 32×32 `images` (their central 28×28) against the test."""
    fake_features = metrics.extract_features(images[..., 2:30, 2:30], net)
    return {
        "fid": metrics.fid_from_features(real_features, fake_features),
        **metrics.precision_recall(real_features, fake_features),
    }


def records(name, dataset, found: dict, trained: float, **extra) -> list[dict]:
    """One record per measured number, printed as it goes."""
    shown = ", ".join(f"{k} {v:.4g}" for k, v in found.items())
    print(f"{name} after {trained:.0f} s: {shown}", flush=True)
    return [record(name, dataset, k, v, UNITS[k], trained, SEED, **extra) for k, v in found.items()]


def train(name, images, real_features, net, args):
    """Train one recipe for --minutes on 2 threads, measured at each mark; (model, rows)."""
    config, lr, betas, batch = RECIPES[name]
    torch.manual_seed(SEED)
    model = stylegan.StyleGAN(config) if name == STYLEGAN_HERE else gan.GAN(config)

    style = {"noise": "random"} if name == STYLEGAN_HERE else {}  # fresh noise, as in training

    def evaluate(m) -> dict[str, float]:
        g = torch.Generator().manual_seed(SEED)
        return measure(m.sample(args.n, generator=g, **style), real_features, net)

    history = fit(
        model,
        images,
        step=gan.train_step,
        steps=10**9,
        lr=lr,
        betas=betas,
        batch_size=batch,
        transform=pad32,
        seed=SEED,
        max_seconds=args.minutes * 60,
        eval_fn=evaluate,
        eval_at_seconds=[m * 60 for m in args.marks if m < args.minutes],
        progress=False,
    )
    rows = []
    for e in history.evals:
        found = {k: v for k, v in e.items() if k not in ("step", "seconds")}
        rows += records(name, MNIST, found, e["seconds"], steps=e["step"], samples=args.n)
    return model, rows


def truncation(name, model, trained, real_features, net, args, **extra) -> list[dict]:
    """FID, precision and recall at each psi in PSIS: the truncation curve."""
    rows = []
    for psi in PSIS:
        g = torch.Generator().manual_seed(SEED)
        x = model.sample(args.n, generator=g, psi=psi, noise="random")
        found = measure(x, real_features, net)
        rows += records(f"{name} at psi {psi}", MNIST, found, trained, psi=psi, **extra)
    return rows


def frey_28(x: torch.Tensor) -> torch.Tensor:
    """Frey faces (N, 1, 28, 20), float in [0, 1], padded by their border to the
    feature network's 28×28."""
    return F.pad(x, (4, 4, 0, 0), mode="replicate")


def faces(net) -> list[dict]:
    """stylegan-frey's samples (the 28×20 face area) and real training faces, each
    against the 196 test faces."""
    train_set, test = data.load("frey", "train"), data.load("frey", "test")
    real = metrics.extract_features(frey_28(data.to_unit(test.images)), net)
    n = 1000
    g = torch.Generator().manual_seed(SEED)
    floor = data.to_unit(train_set.images[torch.randperm(len(train_set), generator=g)[:n]])
    model = hub.load("stylegan-frey")
    info = next(r for r in hub.list() if r["name"] == "stylegan-frey")
    g = torch.Generator().manual_seed(SEED)
    fake = model.sample(n, generator=g, noise="random")[..., 2:30, 6:26]
    extra = {"samples": n, "reference": f"{len(test)} test faces"}
    rows = []
    for name, x, trained, more in (
        ("real train faces (the floor)", floor, 0.0, {}),
        ("stylegan-frey (shipped)", fake, info["metrics"]["train_seconds"],
         {"trained_by": info["command"] + " (on one H100 GPU)"}),
    ):  # fmt: skip
        f = metrics.extract_features(frey_28(x), net)
        found = {"fid": metrics.fid_from_features(real, f), **metrics.precision_recall(real, f)}
        rows += records(name, FREY, found, trained, **extra, **more)
    return rows


def judge(rows: list[dict]) -> list[dict]:
    """The goal: StyleGAN's FID at the last mark within 20 minutes <= DCGAN's there."""
    fid = {
        name: [r for r in rows if r["model"] == name and r["metric"] == "fid"
               and r["wall_seconds"] <= 20 * 60 + 1]
        for name in (DCGAN_HERE, STYLEGAN_HERE)
    }  # fmt: skip
    if not all(fid.values()):
        return []
    style, dc = fid[STYLEGAN_HERE][-1], fid[DCGAN_HERE][-1]
    goal = f"fid <= the DCGAN's {dc['value']:g} after the same {dc['wall_seconds'] / 60:.0f} min"
    return [verdict(style, goal, style["value"] <= dc["value"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget, each")
    parser.add_argument("--marks", type=float, nargs="*", default=[5, 10, 15], help="minutes")
    parser.add_argument("--n", type=int, default=10_000, help="samples for FID, P/R")
    parser.add_argument("--judge-only", action="store_true", help="judge results/stylegan.json")
    args = parser.parse_args()
    if args.judge_only:
        rejudge("stylegan", judge)
        return
    setup(threads=2, seed=SEED)
    train_set, test = data.load("mnist", "train"), data.load("mnist", "test")
    net = hub.load("classifier-mnist")
    real_features = metrics.extract_features(test.images[: args.n], net)
    g = torch.Generator().manual_seed(SEED)
    floor = pad32(train_set.images[torch.randperm(len(train_set), generator=g)[: args.n]])
    n = {"samples": args.n}
    rows = records("real train images (the floor)", MNIST, measure(floor, real_features, net),
                   0.0, **n)  # fmt: skip
    _, dc_rows = train(DCGAN_HERE, train_set.images, real_features, net, args)
    model, style_rows = train(STYLEGAN_HERE, train_set.images, real_features, net, args)
    rows += dc_rows + style_rows
    rows += truncation(STYLEGAN_HERE, model, style_rows[-1]["wall_seconds"], real_features,
                       net, args, **n)  # fmt: skip
    info = next(r for r in hub.list() if r["name"] == "stylegan-mnist")
    rows += truncation("stylegan-mnist (shipped)", hub.load("stylegan-mnist"),
                       info["metrics"]["train_seconds"], real_features, net, args,
                       trained_by=info["command"] + " (on one H100 GPU)", **n)  # fmt: skip
    rows += faces(net)
    write("stylegan", rows + judge(rows))


if __name__ == "__main__":
    main()
