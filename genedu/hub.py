"""Checkpoints without pickles: tensors in safetensors, everything else in JSON.

A model checkpoint is two files side by side, ``NAME.safetensors`` and ``NAME.json``.
The JSON names the model class and its config, so `load` can rebuild the model before
it loads the weights, and it keeps the metrics and the exact command that made it.
Reference checkpoints ship in ``genedu/weights/`` and are listed by `list()`.

    model = genedu.hub.load("vae-mnist")        # a shipped reference, in eval mode
    genedu.hub.save(model, "runs/my-vae", metrics={"nll": 88.1}, command="genedu train ...")
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .distributed import is_main

WEIGHTS_DIR = Path(__file__).parent / "weights"
FORMAT = "genedu-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


# ------------------------------------------------------------------ low-level file pair


def _stem(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def _files(stem: Path) -> tuple[Path, Path]:
    """The pair beside `stem`; a name like "beta0.5" keeps its dot."""
    return stem.parent / f"{stem.name}.safetensors", stem.parent / f"{stem.name}.json"


def write_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``path.safetensors`` and ``path.json`` atomically (temp files, then rename)."""
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    st, js = _files(stem)
    tmp_st, tmp_js = Path(f"{st}.part"), Path(f"{js}.part")
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp_st)
        tmp_js.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_st, st)
        os.replace(tmp_js, js)
    finally:
        tmp_st.unlink(missing_ok=True)
        tmp_js.unlink(missing_ok=True)
    return stem


def read_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a pair written by `write_tensors`, with errors that name the file."""
    st, js = _files(_stem(path))
    for f in (st, js):
        if not f.is_file():
            raise CheckpointError(f"checkpoint file {f} does not exist")
    try:
        meta = json.loads(js.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{js} is not valid JSON ({err}); the checkpoint is corrupt") from err
    try:
        tensors = load_file(st)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{st} is not a readable safetensors file ({err})") from err
    return tensors, meta


# ------------------------------------------------------------------------------ models


def _config_dict(config) -> dict:
    if not dataclasses.is_dataclass(config):
        raise CheckpointError(f"model.config must be a dataclass, got {type(config).__name__}")
    return dataclasses.asdict(config)


def _tuples(value):
    """JSON turns tuples into lists; frozen configs want them back."""
    if isinstance(value, builtins.list):
        return tuple(_tuples(v) for v in value)
    return value


# Every model family `load` may build: the JSON's "class" is looked up here, never
# imported by its name, so a checkpoint cannot make genedu call anything else.
FAMILIES = {
    "genedu.baselines.IndependentBernoulli": "genedu.baselines.BernoulliConfig",
    "genedu.baselines.BernoulliMixture": "genedu.baselines.MixtureConfig",
    "genedu.baselines.IndependentHistogram": "genedu.baselines.HistogramConfig",
    "genedu.vae.VAE": "genedu.vae.VAEConfig",
    "genedu.gan.GAN": "genedu.gan.GANConfig",
    "genedu.stylegan.StyleGAN": "genedu.stylegan.StyleGANConfig",
    "genedu.pixelcnn.PixelCNN": "genedu.pixelcnn.PixelCNNConfig",
    "genedu.pixelcnn.GatedPixelCNN": "genedu.pixelcnn.PixelCNNConfig",
    "genedu.text.NGram": "genedu.text.NGramConfig",
    "genedu.text.CharRNN": "genedu.text.RNNConfig",
    "genedu.text.CharTransformer": "genedu.text.TransformerConfig",
    "genedu.metrics.Classifier": "genedu.metrics.ClassifierConfig",
    "genedu.diffusion.DDPM": "genedu.diffusion.DiffusionConfig",
    "genedu.diffusion.FlowMatching": "genedu.diffusion.DiffusionConfig",
    "genedu.latent_diffusion.LatentDiffusion": "genedu.latent_diffusion.LatentDiffusionConfig",
}


def _registered(qualname: str):
    """The class a registered name stands for (imported only now, from genedu)."""
    module, _, attr = qualname.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _family(meta: dict, where: str):
    """(model class, config class) for a checkpoint's JSON, or a CheckpointError that
    names the field that is wrong."""
    expected = {"name": str, "class": str, "config_class": str, "config": dict, "metrics": dict}
    for key, kind in expected.items():
        if not isinstance(meta.get(key), kind):
            got = type(meta[key]).__name__ if key in meta else "nothing"
            raise CheckpointError(f"{where}: field {key!r} must be {kind.__name__}, got {got}")
    if not isinstance(meta.get("command"), str | None):
        raise CheckpointError(f"{where}: field 'command' must be a string or null")
    cls_name, config_name = meta["class"], meta["config_class"]
    if cls_name not in FAMILIES:
        raise CheckpointError(
            f"{where}: refusing to build {cls_name!r}: 'class' must be one of genedu's model "
            f"families ({', '.join(sorted(FAMILIES))})"
        )
    if config_name != FAMILIES[cls_name]:
        raise CheckpointError(
            f"{where}: refusing to build {config_name!r}: {cls_name} takes a "
            f"{FAMILIES[cls_name]} as 'config_class'"
        )
    return _registered(cls_name), _registered(config_name)


# config fields that were renamed so that one word names one idea across families (the
# width is `hidden`, the depth `layers`); a checkpoint saved before the rename still loads
RENAMED = {
    "PixelCNNConfig": {"channels": "hidden"},
    "StyleGANConfig": {"max_channels": "hidden"},
    "TransformerConfig": {"n_embd": "hidden", "n_layer": "layers", "n_head": "heads"},
}


def _renamed(config_cls, values: dict) -> dict:
    """The JSON's config under today's field names (old names mapped, unless both appear)."""
    old_to_new = RENAMED.get(config_cls.__name__, {})
    return {old_to_new.get(k, k) if old_to_new.get(k) not in values else k: v
            for k, v in values.items()}  # fmt: skip


def _config(config_cls, values: dict, where: str):
    """Build the frozen config, checking each JSON value against the field's default."""
    values = _renamed(config_cls, values)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise CheckpointError(
            f"{where} has config fields {sorted(unknown)} that {config_cls.__name__} lacks"
        )
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,), tuple: (builtins.list,)}
    for key, value in values.items():
        default = fields[key].default
        allowed = kinds.get(type(default))
        if value is None or default is None or allowed is None:
            continue
        if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
            raise CheckpointError(
                f"{where}: config field {key!r} must be {type(default).__name__} "
                f"(like its default {default!r}), got {value!r}"
            )
    try:
        return config_cls(**{k: _tuples(v) for k, v in values.items()})
    except (TypeError, ValueError) as err:
        msg = f"{where}: its config is not a valid {config_cls.__name__}: {err}"
        raise CheckpointError(msg) from err


def save(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    metrics: dict | None = None,
    command: str | None = None,
    half: bool = False,
) -> Path:
    """Save `model` (which has a dataclass `.config`) with its metrics and training command.

    half=True stores floating tensors as float16 to keep shipped weights small; `load`
    returns them as float32. Under torchrun only rank 0 writes; every rank gets the path.
    """
    if not is_main():
        return _stem(path)
    cls = type(model)
    if f"{cls.__module__}.{cls.__qualname__}" not in FAMILIES:
        raise CheckpointError(
            f"hub.save: {cls.__qualname__} is not one of genedu's model families, so `load` "
            "could not rebuild it; register it in genedu.hub.FAMILIES"
        )
    meta = {
        "format": FORMAT,
        "name": _stem(path).name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "config_class": f"{type(model.config).__module__}.{type(model.config).__qualname__}",
        "config": _config_dict(model.config),
        "metrics": metrics or {},
        "command": command,
        "torch": torch.__version__,
    }
    tensors = {
        k: (v.half() if half and v.is_floating_point() else v)
        for k, v in model.state_dict().items()
    }
    return write_tensors(path, tensors, meta)


def load_state(
    model: nn.Module, tensors: dict[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Load `tensors` into `model`, or raise a CheckpointError listing every difference.
    A model whose buffers' sizes depend on its data (an n-gram's tables) first makes room
    for them with its `resize_buffers_for(tensors)`."""
    if hasattr(model, "resize_buffers_for"):
        model.resize_buffers_for(tensors)
    own = model.state_dict()
    problems = [f"missing in {source}: {k}" for k in own if k not in tensors]
    problems += [f"not in the model: {k}" for k in tensors if k not in own]
    problems += [
        f"{k}: {source} has shape {tuple(tensors[k].shape)}, the model {tuple(v.shape)}"
        for k, v in own.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if problems:
        raise CheckpointError(
            f"the {source} does not match {type(model).__name__}'s architecture:\n  "
            + "\n  ".join(problems)
        )
    model.load_state_dict({k: t.to(own[k].dtype) for k, t in tensors.items()})


def _resolve(name: str | os.PathLike) -> Path:
    shipped = WEIGHTS_DIR / f"{name}.json"
    if isinstance(name, str) and "/" not in name and shipped.is_file():
        return shipped.with_suffix("")
    stem = _stem(name)
    if _files(stem)[1].is_file():
        return stem
    known = ", ".join(r["name"] for r in list()) or "none yet"
    raise CheckpointError(
        f"no checkpoint {str(name)!r}: expected a shipped name ({known}) or a path to NAME.json"
    )


def load(name: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from a shipped reference name or a checkpoint path, in eval mode.

    Only the families in `FAMILIES` are built; the JSON is checked field by field, and
    a tensor holding NaN or inf is refused by name.
    """
    stem = _resolve(name)
    tensors, meta = read_tensors(stem)
    where = f"{stem}.json"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a genedu model checkpoint ({FORMAT})")
    cls, config_cls = _family(meta, where)
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise CheckpointError(
            f"{stem}.safetensors: tensor(s) {', '.join(bad)} hold NaN or inf; the checkpoint "
            "is corrupt, or was saved from a run that diverged"
        )
    config = _config(config_cls, meta["config"], where)
    try:
        model = cls(config)
    except (TypeError, ValueError) as err:
        msg = f"{where}: its config does not make a {cls.__name__}: {err}"
        raise CheckpointError(msg) from err
    load_state(model, tensors, source=f"checkpoint {stem.name}")
    return model.to(device).eval()


def info(name: str | os.PathLike) -> dict:
    """A checkpoint's record, without its weights: name, class, config, metrics, command."""
    meta = json.loads(_files(_resolve(name))[1].read_text())
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name}: its JSON is not a genedu checkpoint record")
    return meta


def list() -> builtins.list[dict]:  # noqa: A001 - the design names it hub.list()
    """Every shipped reference checkpoint: name, class, metrics and the command that made it."""
    rows = []
    for js in sorted(WEIGHTS_DIR.glob("*.json")):
        meta = json.loads(js.read_text())
        rows.append({k: meta.get(k) for k in ("name", "class", "metrics", "command")})
    return rows


def exists(path: str | os.PathLike) -> bool:
    """Whether a checkpoint pair's JSON is present at `path`."""
    return _files(_stem(path))[1].is_file()
