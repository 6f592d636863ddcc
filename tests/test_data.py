"""genedu.data: downloads, the registry's search order, offline fallback, readers, helpers."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from genedu import data
from genedu.data import (
    CorruptFileError,
    DataError,
    DownloadError,
    RemoteFile,
    binarize,
    download,
    toy_2d,
)
from genedu.data.readers import _NumpyOnlyUnpickler

# ------------------------------------------------------------------------------ helpers


def md5_of(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def idx_gz(array: np.ndarray) -> bytes:
    """A gzip-compressed IDX file of unsigned bytes (MNIST's format)."""
    magic = 0x00000800 | array.ndim  # 0x08 = unsigned byte, then the number of dims
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


@dataclasses.dataclass
class SyntheticMnist:
    """Tiny but valid MNIST files (6 train, 4 test images of 28x28) and their contents."""

    files: dict[str, bytes]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            (folder / name).write_bytes(content)
        return folder


def synthetic_mnist(seed: int, n_train: int = 6, n_test: int = 4) -> SyntheticMnist:
    rng = np.random.default_rng(seed)
    train_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    test_x = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    train_y = rng.integers(0, 10, n_train, dtype=np.uint8)
    test_y = rng.integers(0, 10, n_test, dtype=np.uint8)
    files = {
        "train-images-idx3-ubyte.gz": idx_gz(train_x),
        "train-labels-idx1-ubyte.gz": idx_gz(train_y),
        "t10k-images-idx3-ubyte.gz": idx_gz(test_x),
        "t10k-labels-idx1-ubyte.gz": idx_gz(test_y),
    }
    return SyntheticMnist(files, train_x, train_y, test_x, test_y)


def patch_mnist_entry(monkeypatch, files: tuple[RemoteFile, ...]) -> None:
    """Swap the registry's MNIST files for synthetic ones (the readers stay the real ones)."""
    entry = data.REGISTRY["mnist"]
    monkeypatch.setitem(data.REGISTRY, "mnist", dataclasses.replace(entry, files=files))


def specs_with_md5(
    synth: SyntheticMnist, base_urls: tuple[str, ...] = ()
) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(name, tuple(base + name for base in base_urls), md5=md5_of(content))
        for name, content in synth.files.items()
    )


def assert_is_test_split(ds: data.ImageSet, synth: SyntheticMnist) -> None:
    assert ds.images.dtype == torch.uint8
    assert tuple(ds.images.shape) == (len(synth.test_images), 1, 28, 28)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(synth.test_images))
    assert torch.equal(ds.labels, torch.from_numpy(synth.test_labels).long())


def cache_folder(dataset_folder: str) -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "genedu" / dataset_folder


# ---------------------------------------------------------------------------- download

BLOB = bytes(range(256)) * 64


@pytest.mark.parametrize("checksum", ["md5", "sha256"])
def test_download_good_file_lands_whole(http_server, tmp_path, checksum):
    base, served = http_server
    (served / "blob.bin").write_bytes(BLOB)
    if checksum == "md5":
        spec = RemoteFile("blob.bin", (base + "blob.bin",), md5=md5_of(BLOB))
    else:
        spec = RemoteFile("blob.bin", (base + "blob.bin",), sha256=(sha256_of(BLOB),))
    dest = tmp_path / "downloads" / "blob.bin"

    assert download(spec, dest) == dest
    assert dest.read_bytes() == BLOB
    assert list(dest.parent.glob("*.part")) == []
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]


def test_download_checksum_mismatch_leaves_nothing(http_server, tmp_path):
    base, served = http_server
    (served / "blob.bin").write_bytes(BLOB)
    spec = RemoteFile("blob.bin", (base + "blob.bin",), md5=md5_of(b"another file"))
    dest = tmp_path / "downloads" / "blob.bin"

    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(spec, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no .part either


@pytest.mark.parametrize("first_mirror", ["404", "wrong-content"])
def test_download_falls_back_to_the_next_mirror(http_server, tmp_path, first_mirror):
    base, served = http_server
    (served / "good").mkdir()
    (served / "good" / "blob.bin").write_bytes(BLOB)
    if first_mirror == "wrong-content":
        (served / "bad").mkdir()
        (served / "bad" / "blob.bin").write_bytes(b"not the file" * 10)
    spec = RemoteFile("blob.bin", (base + "bad/blob.bin", base + "good/blob.bin"), md5=md5_of(BLOB))
    dest = tmp_path / "downloads" / "blob.bin"

    download(spec, dest)
    assert dest.read_bytes() == BLOB
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]


def test_download_every_mirror_failing_names_each(http_server, tmp_path):
    base, _ = http_server
    urls = (base + "a/blob.bin", base + "b/blob.bin")
    spec = RemoteFile("blob.bin", urls, md5=md5_of(BLOB))
    dest = tmp_path / "downloads" / "blob.bin"

    with pytest.raises(DownloadError) as info:
        download(spec, dest, dataset="toy")
    message = str(info.value)
    assert "blob.bin for toy" in message
    assert all(url in message for url in urls)
    assert "404" in message
    assert list(dest.parent.iterdir()) == []


# ---------------------------------------------------- a full set through the registry


def test_load_downloads_to_cache_and_names_a_truncated_file(http_server, monkeypatch):
    base, served = http_server
    synth = synthetic_mnist(seed=1)
    synth.write(served / "mnist")
    patch_mnist_entry(monkeypatch, specs_with_md5(synth, (base + "mnist/",)))

    test = data.load("mnist", split="test")
    assert_is_test_split(test, synth)
    cached = cache_folder("mnist")
    assert sorted(p.name for p in cached.iterdir()) == sorted(synth.files)
    assert all((cached / n).read_bytes() == c for n, c in synth.files.items())

    # The second load needs no server: everything now comes from the cache.
    for f in (served / "mnist").iterdir():
        f.unlink()
    train = data.load("mnist", split="train")
    assert len(train) == 6
    assert torch.equal(train.images[:, 0], torch.from_numpy(synth.train_images))
    assert data.load("mnist", split="all").labels.tolist() == (
        synth.train_labels.tolist() + synth.test_labels.tolist()
    )

    # A truncated cached file is reported by path, with the way to fix it.
    broken = cached / "t10k-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(CorruptFileError) as info:
        data.load("mnist", split="test")
    message = str(info.value)
    assert str(broken) in message
    assert "genedu data fetch mnist" in message


def test_load_downloads_only_the_missing_file(http_server, monkeypatch):
    base, served = http_server
    synth = synthetic_mnist(seed=2)
    synth.write(served / "mnist")
    patch_mnist_entry(monkeypatch, specs_with_md5(synth, (base + "mnist/",)))
    data.load("mnist", split="test")
    cached = cache_folder("mnist")
    (cached / "t10k-labels-idx1-ubyte.gz").unlink()
    (served / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()  # present in the cache

    assert_is_test_split(data.load("mnist", split="test"), synth)
    assert (cached / "t10k-labels-idx1-ubyte.gz").is_file()


def test_search_order_root_then_env_then_cache(tmp_path, monkeypatch):
    sets = {where: synthetic_mnist(seed) for seed, where in enumerate(["root", "env", "cache"])}
    # Each file may be any of the three versions: accept all their sha256 digests.
    specs = tuple(
        RemoteFile(name, (), sha256=tuple(sha256_of(s.files[name]) for s in sets.values()))
        for name in sets["root"].files
    )
    patch_mnist_entry(monkeypatch, specs)
    root = sets["root"].write(tmp_path / "explicit" / "mnist").parent
    env_dir = sets["env"].write(tmp_path / "env-data" / "mnist").parent
    sets["cache"].write(cache_folder("mnist"))
    monkeypatch.setenv("GENEDU_DATA_DIR", str(env_dir))

    assert_is_test_split(data.load("mnist", "test", root=root), sets["root"])
    assert_is_test_split(data.load("mnist", "test"), sets["env"])
    assert data.status("mnist", root=root) == f"present: {root / 'mnist'}"

    # A root that lacks one file is passed over as a whole.
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert_is_test_split(data.load("mnist", "test", root=root), sets["env"])

    monkeypatch.delenv("GENEDU_DATA_DIR")
    assert_is_test_split(data.load("mnist", "test"), sets["cache"])


# ---------------------------------------------------------------- offline and fallback


def test_offline_fallback_prints_one_line_and_returns_bundled(monkeypatch, capsys):
    monkeypatch.setenv("GENEDU_OFFLINE", "1")
    ds = data.load("mnist", split="test", fallback="mnist5k")

    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert "mnist5k" in lines[0] and "GENEDU_OFFLINE" in lines[0]
    assert ds.name == "mnist5k" and ds.split == "test"
    assert len(ds) == 1000
    assert ds.images.dtype == torch.uint8 and ds.shape == (1, 28, 28)
    assert ds.labels.dtype == torch.int64
    assert torch.equal(ds.images, data.load("mnist5k", "test").images)
    assert not cache_folder("mnist").exists()  # nothing was fetched
    data.load("mnist", split="train", fallback="mnist5k")  # the other split: no second line
    assert capsys.readouterr().out == ""


def test_bundled_tinyshakespeare_loads_offline_without_a_data_folder(monkeypatch, capsys):
    monkeypatch.setenv("GENEDU_OFFLINE", "1")
    monkeypatch.delenv("GENEDU_DATA_DIR", raising=False)
    text = data.load("tinyshakespeare", "all", fallback="python-docs")
    assert capsys.readouterr().out == ""  # no fallback line: the real text is here
    assert text.name == "tinyshakespeare" and len(text) == 1_115_394
    assert text.text.startswith("First Citizen:")
    assert data.status("tinyshakespeare") == "bundled with genedu"
    assert not cache_folder("tinyshakespeare").exists()


def test_bundled_fashion_test_split_loads_offline_and_train_still_needs_the_download(
    monkeypatch,
):
    monkeypatch.setenv("GENEDU_OFFLINE", "1")
    monkeypatch.delenv("GENEDU_DATA_DIR", raising=False)
    test = data.load("fashion-mnist", "test")
    assert test.name == "fashion-mnist" and test.images.shape == (10_000, 1, 28, 28)
    assert torch.equal(test.labels.bincount(), torch.full((10,), 1000))  # 1,000 per class
    assert test.classes == data.FASHION_CLASSES
    for split in ("train", "all"):  # their files are not bundled
        with pytest.raises(DataError, match="GENEDU_OFFLINE"):
            data.load("fashion-mnist", split)
    assert data.status("fashion-mnist").startswith("test split bundled with genedu")


def test_a_data_folder_comes_before_the_bundled_copy(tmp_path, monkeypatch):
    """A user's own copy wins, and a corrupt one is named, not silently replaced."""
    monkeypatch.setenv("GENEDU_DATA_DIR", str(tmp_path))
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_text("not Shakespeare")
    with pytest.raises(CorruptFileError, match="input.txt"):
        data.load("tinyshakespeare", fallback="python-docs")


def test_offline_without_fallback_raises(monkeypatch):
    monkeypatch.setenv("GENEDU_OFFLINE", "1")
    with pytest.raises(DataError, match="GENEDU_OFFLINE"):
        data.load("mnist", split="test")


def test_failed_download_falls_back_with_the_reason(http_server, monkeypatch, capsys):
    base, _ = http_server  # serves nothing: every mirror answers 404
    patch_mnist_entry(monkeypatch, specs_with_md5(synthetic_mnist(0), (base,)))
    ds = data.load("mnist", split="train", fallback="digits")

    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "digits" in lines[0] and "could not download" in lines[0]
    assert "mirrors;" in lines[0] or "mirrors)" in lines[0]  # the summary, not a dangling colon
    assert ds.name == "digits" and ds.shape == (1, 8, 8)


# ------------------------------------------------------------------------- embedded sets


def image_keys(ds: data.ImageSet) -> Counter:
    """Each example as hashable (image bytes, label), counted."""
    return Counter(
        (img.numpy().tobytes(), int(lab)) for img, lab in zip(ds.images, ds.labels, strict=True)
    )


def test_mnist5k_all():
    ds = data.load("mnist5k")
    assert ds.split == "all"
    assert len(ds) == 5000
    assert ds.images.dtype == torch.uint8 and ds.shape == (1, 28, 28)
    assert ds.labels.dtype == torch.int64
    assert sorted(ds.labels.unique().tolist()) == list(range(10))
    # real digits: dark background, bright strokes, ~10-25% of pixels inked
    assert ds.images.max() == 255
    assert 0.05 < (ds.images > 127).float().mean() < 0.3


def test_mnist5k_train_and_test_partition_all():
    train, test, everything = (data.load("mnist5k", s) for s in ("train", "test", "all"))
    assert (len(train), len(test)) == (4000, 1000)
    assert image_keys(train) + image_keys(test) == image_keys(everything)


def test_seeded_splits_repeat_exactly():
    for name in ("mnist5k", "digits", "lfw-faces"):
        first, second = data.load(name, "test"), data.load(name, "test")
        assert torch.equal(first.images, second.images)
        if first.labels is not None:
            assert torch.equal(first.labels, second.labels)
    a, b = data.seeded_split(37, "test", 0.2), data.seeded_split(37, "test", 0.2)
    train = data.seeded_split(37, "train", 0.2)
    assert torch.equal(a, b) and len(a) == 7
    assert sorted(a.tolist() + train.tolist()) == list(range(37))


def test_digits():
    everything = data.load("digits", "all")
    assert len(everything) == 1797 and everything.shape == (1, 8, 8)
    assert everything.images.max() == 255  # 16 scaled to 255
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == round(1797 * 0.2)
    assert image_keys(train) + image_keys(test) == image_keys(everything)


def test_lfw_faces():
    everything = data.load("lfw-faces", "all")
    assert len(everything) == 100 and everything.shape == (1, 25, 25)
    assert everything.labels is None
    assert (len(data.load("lfw-faces", "train")), len(data.load("lfw-faces", "test"))) == (80, 20)


def test_patches_test_split_is_the_last_photo_only():
    train, test, everything = (data.load("patches", s) for s in ("train", "test", "all"))
    assert train.shape == test.shape == (3, 32, 32)
    flower = len(data.PATCH_PHOTOS) - 1
    assert everything.classes[flower] == "flower"
    assert test.labels.unique().tolist() == [flower]
    assert flower not in train.labels.tolist()
    assert len(train) + len(test) == len(everything)
    assert torch.equal(everything.images[-len(test) :], test.images)
    assert torch.equal(everything.images[: len(train)], train.images)


def test_census_names_are_lowercase_lines_and_splits_disjoint():
    everything, train, test = (data.load("census-names", s) for s in ("all", "train", "test"))
    assert isinstance(everything, data.TextSet)
    names = everything.lines
    assert len(names) > 1000
    assert all(n == n.lower() and n.isalpha() for n in names)
    assert len(set(names)) == len(names)
    assert everything.text.endswith("\n") and "\n\n" not in everything.text
    assert set(train.lines).isdisjoint(test.lines)
    assert set(train.lines) | set(test.lines) == set(names)
    assert len(test.lines) == round(len(names) * 0.1)


# ---------------------------------------------------------------------------- bad input


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DataError) as info:
        data.load("mnits")
    assert isinstance(info.value, ValueError)
    assert "mnits" in str(info.value)
    assert all(name in str(info.value) for name in data.REGISTRY)


def test_unknown_split():
    with pytest.raises(DataError, match="valid"):
        data.load("mnist5k", split="valid")


def test_fallback_must_be_embedded():
    with pytest.raises(DataError, match="embedded"):
        data.load("mnist5k", fallback="mnist")


# ------------------------------------------------------------------------------ helpers


def test_binarize_is_bernoulli_of_the_intensity():
    levels = torch.tensor([0, 26, 64, 128, 191, 255], dtype=torch.uint8)
    images = levels.view(1, 1, 1, -1).expand(20_000, 1, 1, -1).contiguous()
    x = binarize(images, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.shape == images.shape
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    frequency = x.mean(dim=0).flatten()
    # binomial standard error <= 0.0036 here; 0.015 is > 4 of them
    torch.testing.assert_close(frequency, levels.float() / 255, atol=0.015, rtol=0)
    assert frequency[0] == 0 and frequency[-1] == 1


def test_binarize_generator_repeats_and_draws_afresh():
    images = data.load("digits", "test").images
    a = binarize(images, generator=torch.Generator().manual_seed(5))
    b = binarize(images, generator=torch.Generator().manual_seed(5))
    c = binarize(images, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_binarize_threshold():
    images = torch.tensor([0, 127, 128, 255], dtype=torch.uint8).view(1, 1, 1, 4)
    assert binarize(images, threshold=0.5).flatten().tolist() == [0, 0, 1, 1]
    assert binarize(images, threshold=0.0).flatten().tolist() == [0, 1, 1, 1]
    assert binarize(images, threshold=1.0).flatten().tolist() == [0, 0, 0, 0]
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            binarize(images, threshold=bad)


def test_binarize_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        binarize(torch.rand(2, 1, 4, 4))


@pytest.mark.parametrize("name", ["ring", "moons", "spiral"])
def test_toy_2d_shapes_and_seeds(name):
    a = toy_2d(name, 500, generator=torch.Generator().manual_seed(0))
    b = toy_2d(name, 500, generator=torch.Generator().manual_seed(0))
    c = toy_2d(name, 500, generator=torch.Generator().manual_seed(1))
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_toy_2d_ring_has_radius_two_and_eight_modes():
    x = toy_2d("ring", 4000, generator=torch.Generator().manual_seed(0))
    radius = x.norm(dim=1)
    assert abs(radius.mean().item() - 2.0) < 0.02
    assert ((radius - 2.0).abs() < 0.3).all()
    sector = torch.atan2(x[:, 1], x[:, 0]) / (2 * torch.pi / 8)
    assert ((sector - sector.round()).abs() < 0.15).all()  # near one of 8 angles
    assert len(sector.round().remainder(8).unique()) == 8


def test_toy_2d_unknown_name():
    with pytest.raises(ValueError, match="unknown toy distribution"):
        toy_2d("swiss-roll", 10)


# ------------------------------------------------------------------------- real data


def test_real_mnist_test_split(shared_data):
    ds = data.load("mnist", split="test")
    assert len(ds) == 10_000
    assert ds.images.dtype == torch.uint8 and ds.shape == (1, 28, 28)
    assert ds.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert not cache_folder("mnist").exists()  # read in place, not copied


def test_real_frey(shared_data):
    everything = data.load("frey", "all")
    assert len(everything) == 1965 and everything.shape == (1, 28, 20)
    assert (len(data.load("frey", "train")), len(data.load("frey", "test"))) == (1769, 196)


def test_real_olivetti_every_person_in_both_splits(shared_data):
    train, test = data.load("olivetti", "train"), data.load("olivetti", "test")
    assert (len(train), len(test)) == (320, 80)
    assert train.shape == (1, 64, 64)
    assert Counter(train.labels.tolist()) == dict.fromkeys(range(40), 8)
    assert Counter(test.labels.tolist()) == dict.fromkeys(range(40), 2)
    assert not set(map(bytes, train.images.flatten(1).numpy())) & set(
        map(bytes, test.images.flatten(1).numpy())
    )


def test_real_text_sets(shared_data):
    shakespeare = data.load("tinyshakespeare", "all")
    assert len(shakespeare) == 1_115_394
    train, test = data.load("tinyshakespeare", "train"), data.load("tinyshakespeare", "test")
    assert train.text + test.text == shakespeare.text
    assert len(data.load("names", "all").lines) == 32_033


# ------------------------------------------------------------------------------- CIFAR-10


class Py2StylePickler(pickle._Pickler):
    """Pickle like CIFAR-10's Python 2 files: strings as py2 `str`, numpy.core's rebuilder."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self.save_bytes(obj.encode("latin-1"))

    def save_global(self, obj, name=None) -> None:
        if getattr(obj, "__name__", "") == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def pickled_batch(batch: dict, style: str) -> bytes:
    if style == "protocol-4":
        return pickle.dumps(batch, protocol=4)
    buffer = io.BytesIO()
    Py2StylePickler(buffer, protocol=2).dump(batch)
    raw = buffer.getvalue()
    assert b"numpy.core.multiarray\n_reconstruct\n" in raw and b"_codecs" not in raw
    return raw


def fake_cifar_tarball(path: Path, style: str, per_batch: int = 2) -> dict[str, tuple]:
    """A cifar-10-python.tar.gz with 5 train batches and a test batch of `per_batch` images."""
    rng = np.random.default_rng(0)
    contents = {}
    with tarfile.open(path, "w:gz") as tar:
        for member in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            images = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, per_batch).tolist()
            contents[member] = (images, labels)
            raw = pickled_batch(
                {b"batch_label": b"fake", b"data": images, b"labels": labels}, style
            )
            info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return contents


@pytest.mark.parametrize("style", ["python2", "protocol-4"])
def test_cifar10_reader(tmp_path, monkeypatch, style):
    root = tmp_path / "root"
    (root / "cifar10").mkdir(parents=True)
    tarball = root / "cifar10" / "cifar-10-python.tar.gz"
    contents = fake_cifar_tarball(tarball, style)
    entry = data.REGISTRY["cifar10"]
    spec = dataclasses.replace(entry.files[0], md5=md5_of(tarball.read_bytes()))
    monkeypatch.setitem(data.REGISTRY, "cifar10", dataclasses.replace(entry, files=(spec,)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core under numpy 2
        train = data.load("cifar10", "train", root=root)
        test = data.load("cifar10", split="test", root=root)
    assert len(train) == 10 and len(test) == 2
    assert train.shape == (3, 32, 32) and train.images.dtype == torch.uint8
    assert train.classes == data.CIFAR_CLASSES
    expected = np.concatenate([contents[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert np.array_equal(train.images.flatten(1).numpy(), expected)
    assert test.labels.tolist() == contents["test_batch"][1]
    # channel-first layout: the first 1024 bytes of a row are the red plane
    assert np.array_equal(test.images[0, 0].flatten().numpy(), contents["test_batch"][0][0, :1024])


class _CallsOsSystem:
    def __reduce__(self):
        return (os.system, ("true",))


def test_cifar_unpickler_refuses_other_globals():
    payload = pickle.dumps({b"data": _CallsOsSystem()}, protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load .*system"):
        _NumpyOnlyUnpickler(io.BytesIO(payload), encoding="bytes").load()


def test_to_square_pools_larger_and_border_pads_smaller_images():
    big = torch.arange(64.0).view(1, 1, 8, 8) / 64
    assert torch.allclose(data.to_square(big, 4), torch.nn.functional.avg_pool2d(big, 2))
    small = torch.tensor([[[[10, 20], [30, 40]]]], dtype=torch.uint8)  # 2×2
    out = data.to_square(small, 4)
    assert out.shape == (1, 1, 4, 4) and out.dtype == torch.float32
    assert torch.allclose(out[0, 0, 1:3, 1:3], small[0, 0].float() / 255)
    assert out[0, 0, 0, 0] == out[0, 0, 1, 1] and out[0, 0, 3, 3] == out[0, 0, 2, 2]
    wide = torch.rand(2, 1, 28, 20)  # Frey: 2 rows above and below, 6 columns each side
    padded = data.to_square(wide, 32)
    assert torch.equal(padded[:, :, 2:30, 6:26], wide)
    with pytest.raises(ValueError, match="pad up to 16×16"):
        data.to_square(torch.rand(1, 1, 28, 28), 16)


def test_a_sha256_mismatch_is_caught_as_an_md5_one_is(http_server, tmp_path):
    base, served = http_server
    (served / "blob.bin").write_bytes(BLOB)
    spec = RemoteFile("blob.bin", (base + "blob.bin",), sha256=(sha256_of(b"another file"),))
    assert not spec.matches(md5_of(BLOB), sha256_of(BLOB))
    assert spec.matches(md5_of(BLOB), sha256_of(b"another file"))
    dest = tmp_path / "downloads" / "blob.bin"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(spec, dest)
    assert not dest.exists()
