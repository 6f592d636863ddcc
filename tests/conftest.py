"""Shared fixtures: every test runs isolated, offline and quick.

* `_isolate` (autouse): a private cache ($XDG_CACHE_HOME in tmp), GENEDU_QUICK=1, no
  GENEDU_OFFLINE, no GENEDU_DATA_DIR, and no connection to any host but this one.
* `shared_data`: the staged real datasets ($GENEDU_DATA_DIR of the environment pytest
  started in), or a skip when there are none.
* `http_server`: a real HTTP server on 127.0.0.1 serving a temporary folder.
"""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

# Before any test module imports matplotlib (through genedu.viz): draw without a display.
os.environ["MPLBACKEND"] = "Agg"

# Read once, before any test's environment is changed.
ORIGINAL_DATA_DIR = os.environ.get("GENEDU_DATA_DIR", "")

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", None}


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give each test its own cache and environment; forbid non-local network access."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("GENEDU_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GENEDU_OFFLINE", raising=False)
    monkeypatch.delenv("GENEDU_DATA_DIR", raising=False)
    # The fallback announcement is printed once per process; each test starts afresh.
    monkeypatch.setattr("genedu.data._FELL_BACK", set())
    # A proxy from the environment must never see the local test server's requests.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    real_getaddrinfo = socket.getaddrinfo

    def local_only_getaddrinfo(host, *args, **kwargs):
        if host not in LOCAL_HOSTS:
            raise socket.gaierror(f"tests are offline: refusing to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only_getaddrinfo)


@pytest.fixture
def shared_data(_isolate, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The staged real datasets, also put back in $GENEDU_DATA_DIR; skip when absent."""
    if not ORIGINAL_DATA_DIR:
        pytest.skip("GENEDU_DATA_DIR is not set: the real datasets are not staged here")
    root = Path(ORIGINAL_DATA_DIR)
    if not root.is_dir():
        pytest.skip(f"GENEDU_DATA_DIR={ORIGINAL_DATA_DIR} is not a folder")
    monkeypatch.setenv("GENEDU_DATA_DIR", str(root))
    return root


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_server(tmp_path: Path):
    """Serve a fresh folder over HTTP on 127.0.0.1; yields (base_url ending in '/', folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
