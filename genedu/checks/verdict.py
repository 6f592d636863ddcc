"""How every checker speaks: a verdict with a hint, "not attempted yet" for None, and
the shape-then-values comparison with genedu's own answer."""

from __future__ import annotations

import torch


def _verdict(ok: bool, name: str, hint: str) -> bool:
    print(f"✓ {name} is right." if ok else f"✗ {name} is not right yet. Hint: {hint}")
    return ok


def _attempted(result, name: str) -> bool:
    if result is None:
        print(f"… {name} returns None: not attempted yet.")
        return False
    return True


def _close(result, expected: torch.Tensor, name: str, hint: str, atol: float = 1e-4) -> bool:
    """The verdict for a function that should return `expected`: shape first, then values."""
    if not isinstance(result, torch.Tensor) or result.shape != expected.shape:
        got = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        return _verdict(False, name, f"return a tensor of shape {tuple(expected.shape)}, not {got}")
    return _verdict(torch.allclose(result.double(), expected.double(), atol=atol), name, hint)


def _matches(result, expected: torch.Tensor, name: str, hint: str, atol: float = 1e-4) -> bool:
    """The verdict for a function's result that should equal `expected`: None is "not
    attempted yet"; anything else is compared as a tensor, shape first."""
    if not _attempted(result, name):
        return False
    return _close(torch.as_tensor(result), expected, name, hint, atol=atol)


def _matches_each(results: list, expected: torch.Tensor, name: str, hint: str, atol: float) -> bool:
    """`_matches` for a list of results (one per setting tried), stacked."""
    if not _attempted(results[0], name):
        return False
    return _close(torch.stack([torch.as_tensor(r) for r in results]), expected, name, hint, atol)
