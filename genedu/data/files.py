"""Where a dataset's files are looked for, how they are verified, and how they are
downloaded: atomically, checked while they stream."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from .registry import get_entry
from .types import (
    CorruptFileError,
    DataError,
    DownloadError,
    Entry,
    RemoteFile,
)

# ----------------------------------------------------------------------- where files live


def offline() -> bool:
    return os.environ.get("GENEDU_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genedu"


# Small full sets (or splits) whose licence allows it ship inside the package, so that
# a chapter whose story depends on them tells it offline too: Tiny Shakespeare and the
# Fashion-MNIST test set. Searched last, after every root a user controls.
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled"


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
