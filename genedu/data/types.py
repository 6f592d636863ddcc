"""The dataset types: an ImageSet or a TextSet, the files a set is made of and its
registry entry, and the errors that name what went wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

SPLITS = ("train", "test", "all")
SPLIT_SEED = 0


class DataError(ValueError):
    """A dataset could not be loaded, with a message that says what to do."""

    @property
    def reason(self) -> str:
        """The message's first line, for a one-line summary (its details follow a colon)."""
        return str(self).splitlines()[0].rstrip(":")


class CorruptFileError(DataError):
    """A dataset file is present but its checksum is not the published one."""


class DownloadError(DataError):
    """No mirror delivered a file that matched its checksum."""


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 N×C×H×W with optional int64 class labels."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_images(self.images, f"ImageSet {self.name!r}")
        if self.labels is not None:
            if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
                raise ValueError(
                    f"ImageSet {self.name!r}: labels must be int64 of shape "
                    f"({len(self.images)},), got {self.labels.dtype} {tuple(self.labels.shape)}"
                )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])


@dataclass(frozen=True)
class TextSet:
    """A text corpus as one string. by_line: each line is one item (a name), not a
    line of running prose."""

    name: str
    split: str
    text: str
    by_line: bool = False

    def __len__(self) -> int:
        return len(self.text)

    @property
    def lines(self) -> list[str]:
        return [line for line in self.text.split("\n") if line]


@dataclass(frozen=True)
class RemoteFile:
    """One file of a full dataset: where it lives and how to recognise it."""

    filename: str
    mirrors: tuple[str, ...]
    md5: str | None = None
    sha256: tuple[str, ...] = ()  # every digest known to be a faithful copy

    def matches(self, md5: str, sha256: str) -> bool:
        ok_md5 = self.md5 is None or md5 == self.md5
        ok_sha = not self.sha256 or sha256 in self.sha256
        return ok_md5 and ok_sha and (self.md5 is not None or bool(self.sha256))


@dataclass(frozen=True)
class Entry:
    """A registered dataset. `read` turns the located files (or nothing) into the data."""

    name: str
    kind: str  # "image" or "text"
    description: str
    shape: str
    read: Callable[..., ImageSet | TextSet]
    folder: str | None = None  # full sets only: the folder under a data root
    files: tuple[RemoteFile, ...] = ()
    official_split: bool = False
    split_note: str = ""
    citation: str = ""
    terms: str = ""  # the licence or terms of use, shown by `genedu data list`
    bundled: tuple[str, ...] = ()  # files of a full set shipped inside genedu (BUNDLED_DIR)
    split_files: dict[str, tuple[str, ...]] = field(default_factory=dict)  # a split's own files
    extra: dict = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return not self.files

    def files_for(self, split: str | None = None) -> tuple[RemoteFile, ...]:
        """The files that `split` reads (all of them when the split has no own list)."""
        names = self.split_files.get(split) if split is not None else None
        return self.files if names is None else tuple(f for f in self.files if f.filename in names)


def check_images(images: torch.Tensor, what: str = "images") -> None:
    """Raise a ValueError unless `images` is a uint8 tensor of shape N×C×H×W, C in {1, 3}."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{what}: expected a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise ValueError(f"{what}: expected dtype torch.uint8, got {images.dtype}")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"{what}: expected shape N×C×H×W with C = 1 or 3, got {tuple(images.shape)}"
        )
