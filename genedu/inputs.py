"""The checks every model and application makes on what it is handed, written once.

A wrong kind of thing (a list for a tensor, a float for a count, integer pixels) raises
TypeError; the right kind with a wrong value (a shape, a range, NaN, an empty batch)
raises ValueError. Every message says what was expected and what came in, so that a
learner's mistake is named where it is made, not deep inside a convolution. A model
file calls one of these in one line:

    inputs.images(x, self.config.shape, what="VAE.loss", values="unit")
    y = inputs.labels(y, len(x), self.config.num_classes, what="VAE.loss")
    n = inputs.count(n, "n")
"""

from __future__ import annotations

import math
import numbers

import torch

VALUES = {
    "unit": "values in [0, 1]",
    "binary": "binary values (0 or 1)",
    "levels": "8-bit grey levels k/255 in [0, 1]",
    "any": "finite values",
}
HINTS = {
    "unit": "genedu.data.to_unit turns uint8 images into floats in [0, 1]",
    "binary": "genedu.data.binarize turns images into 0s and 1s",
    "levels": "genedu.data.to_unit turns uint8 images into levels k/255",
    "any": "",
}


def described(x) -> str:
    """What came in, for a message: a tensor's dtype and shape, else its type."""
    if isinstance(x, torch.Tensor):
        return f"a {str(x.dtype).removeprefix('torch.')} tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, numbers.Number) else type(x).__name__


def images(
    x,
    shape: tuple[int, ...] | None = None,
    *,
    what: str = "images",
    values: str = "unit",
    hint: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> None:
    """A non-empty batch N×`shape` (any N×C×H×W when shape is None) of `values`: "unit"
    (in [0, 1]), "binary" (0 or 1), "levels" (k/255) or "any" (finite points), in the
    model's floating dtype (float32 unless the model was made float64)."""
    hint = HINTS[values] if hint is None else hint
    hint = f"; {hint}" if hint else ""
    layout = "N×" + "×".join(map(str, shape)) if shape is not None else "N×C×H×W"
    kind = str(dtype).removeprefix("torch.")
    expected = f"a {kind} tensor {layout} of {VALUES[values]}"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected {expected}, got {described(x)}")
    if x.dtype != dtype:
        fix = f"; use .to(torch.{kind})" if x.is_floating_point() else hint
        raise TypeError(f"{what}: expected {expected}, got {described(x)}{fix}")
    dims_ok = x.dim() == 4 if shape is None else tuple(x.shape[1:]) == tuple(shape)
    if not dims_ok or x.dim() < 2:
        raise ValueError(f"{what}: expected {expected}, got {described(x)}")
    if len(x) == 0:
        raise ValueError(f"{what}: expected at least one example, got an empty batch {layout}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: expected {VALUES[values]}, got NaN or inf in the batch")
    if values == "any":
        return
    lo, hi = x.min().item(), x.max().item()
    if lo < 0 or hi > 1:
        raise ValueError(f"{what}: expected {VALUES[values]}, got values in [{lo:.3g}, {hi:.3g}]"
                         f"{hint}")  # fmt: skip
    if values == "binary" and ((x != 0) & (x != 1)).any():
        raise ValueError(f"{what}: expected {VALUES[values]}, got fractions{hint}")
    if values == "levels":
        scaled = x * 255
        if ((scaled - scaled.round()).abs() > 1e-3).any():
            raise ValueError(f"{what}: expected {VALUES[values]}, got other values{hint}")


def vectors(z, dim: int, *, what: str = "z", dtype: torch.dtype = torch.float32) -> None:
    """A non-empty batch (N, dim) of finite values, such as latent codes, in `dtype`."""
    expected = f"a {str(dtype).removeprefix('torch.')} tensor (N, {dim}) of finite values"
    if not isinstance(z, torch.Tensor) or z.dtype != dtype:
        raise TypeError(f"{what}: expected {expected}, got {described(z)}")
    if z.dim() != 2 or z.shape[1] != dim:
        raise ValueError(f"{what}: expected {expected}, got {described(z)}")
    if len(z) == 0:
        raise ValueError(f"{what}: expected at least one row, got an empty batch (0, {dim})")
    if not torch.isfinite(z).all():
        raise ValueError(f"{what}: expected finite values, got NaN or inf")


def labels(y, n: int, num_classes: int, *, what: str = "y") -> torch.Tensor | None:
    """Class labels for a batch of n: None for an unconditional model (num_classes 0),
    else an int (one class for all) or n integers in 0..num_classes-1; as int64."""
    if num_classes == 0:
        if y is not None:
            raise ValueError(f"{what}: this model is unconditional (num_classes=0); pass no y")
        return None
    expected = f"y: {n} integer class labels in 0..{num_classes - 1}"
    if y is None:
        raise ValueError(f"{what}: this model is class-conditional; expected {expected}")
    if isinstance(y, bool) or not isinstance(y, int | torch.Tensor):
        raise TypeError(f"{what}: expected {expected} (a tensor or an int), got {described(y)}")
    y = torch.as_tensor(y)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{what}: expected {expected}, got {described(y)}")
    if y.dim() == 0:
        y = y.expand(n)
    if y.shape != (n,):
        raise ValueError(f"{what}: expected {expected}, got {described(y)}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{what}: expected {expected}, got values in {y.min().item()}..{y.max().item()}"
        )
    return y.long()


def count(n, what: str, *, minimum: int = 1) -> int:
    """A whole number >= minimum (a sample count, k, top_k, a number of steps)."""
    if isinstance(n, torch.Tensor) and n.dim() == 0 and not n.is_floating_point():
        n = n.item()
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{what}: expected a whole number >= {minimum}, got {described(n)}")
    if n < minimum:
        raise ValueError(f"{what}: expected a whole number >= {minimum}, got {n}")
    return int(n)


def number(
    v,
    what: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """A finite real number in [low, high] (an end is excluded with open_low/open_high)."""
    lo = "" if low is None else f"{'(' if open_low else '['}{low}"
    hi = "" if high is None else f"{high}{')' if open_high else ']'}"
    expected = "a finite number" + (f" in {lo or '(-inf'}, {hi or 'inf)'}" if lo or hi else "")
    if isinstance(v, torch.Tensor) and v.dim() == 0:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{what}: expected {expected}, got {described(v)}")
    v = float(v)
    below = low is not None and (v < low or (open_low and v == low))
    above = high is not None and (v > high or (open_high and v == high))
    if not math.isfinite(v) or below or above:
        raise ValueError(f"{what}: expected {expected}, got {v}")
    return v
