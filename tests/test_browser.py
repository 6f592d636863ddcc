"""The built book, opened in a real browser: Debian's chromium driven by Playwright.

Runs after the book build (`make test` stage 5) against _build/html served on
127.0.0.1. For every page in the table of contents it checks that the page loads,
that the maths is typeset by the vendored MathJax, that every figure has pixels, and
(on chapters) that the Binder and Colab launch buttons exist. Any request that leaves
127.0.0.1 is blocked and fails the test: the book must work with no network.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Console messages that are not our bugs, each with the reason it is tolerated.
CONSOLE_ALLOW = [
    # Chromium logs this for the favicon it requests by default; the book has no favicon.
    re.compile(r"favicon\.ico.*404|404.*favicon"),
]


NAN_PERCENT = re.compile(r"\bnan\s*%", re.I)
NON_FINITE = re.compile(r"(?<![\w.])[-+]?(nan|inf)(?![\w(-])", re.I)  # as tests/test_book_truth


def _pages() -> list[tuple[str, bool]]:
    """(html path, is_chapter) for every file in _toc.yml."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return [(f"{f}.html", f.startswith("notebooks/")) for f in files]


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").is_file():
        pytest.fail("_build/html is missing: build the book first (make book-check)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("GENEDU_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "chromium is not installed and GENEDU_REQUIRE_BROWSER=1: apt-get install chromium"
            )
        pytest.skip(
            "chromium is not installed (apt-get install chromium); "
            "set GENEDU_REQUIRE_BROWSER=1 to fail instead"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.mark.parametrize("path,is_chapter", _pages())
def test_page(server, browser, path, is_chapter):
    page = browser.new_page()
    errors, outside = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(server):
            return r.continue_()
        outside.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    response = page.goto(f"{server}/{path}", wait_until="load")
    assert response is not None and response.ok, (
        f"{path} did not load: {response and response.status}"
    )
    assert page.locator("main h1").count() >= 1, f"{path} has no title"

    # Maths: every math element typeset by MathJax, no raw TeX left behind.
    n_math = page.locator(".math").count()
    if n_math:
        page.wait_for_function(
            "() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)", timeout=20000
        )
        page.evaluate("() => MathJax.startup.promise.then(() => true)")
        typeset = page.locator("mjx-container").count()
        assert typeset >= n_math, f"{path}: {n_math} math elements but {typeset} typeset"

    # Figures: every image has real pixels; chapters have output figures.
    page.wait_for_load_state("networkidle")
    broken = page.evaluate(
        "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken, f"{path}: images that did not load: {broken}"
    if is_chapter:
        n_figures = page.locator(".cell_output img").count()
        assert n_figures >= 3, f"{path}: expected output figures, found {n_figures}"
        # Launch buttons for Binder and Colab.
        for host in ("mybinder.org", "colab.research.google.com"):
            assert page.locator(f'a[href*="{host}"]').count() >= 1, (
                f"{path}: no {host} launch button"
            )
        # Widgets stored by the build are rendered by the vendored widget manager. Attached,
        # not necessarily visible: a finished progress bar (leave=False) is rendered hidden.
        if page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count():
            page.wait_for_selector(".jupyter-widgets, .widget-slider", state="attached",
                                   timeout=10000)  # fmt: skip
        # A slider over precomputed pictures (viz.choice_slider) must change the picture
        # with no kernel: move each one a step and see another image shown.
        for box in page.locator(".genedu-choice-slider").all():
            shown = box.locator(".widget-image").first.get_attribute("src")
            handle = box.locator(".noUi-handle").first
            handle.focus()
            for key in ("ArrowRight", "ArrowLeft", "ArrowLeft"):  # the last setting: go back
                page.keyboard.press(key)
                page.wait_for_timeout(300)
                moved = box.locator(".widget-image").first.get_attribute("src")
                if moved != shown:
                    break
            assert moved != shown, f"{path}: moving a choice slider did not change its picture"

    # What a reader sees: no "nan%" anywhere, and no nan or inf printed as a cell's result.
    text = page.inner_text("main")
    assert not NAN_PERCENT.search(text), f"{path}: the page shows {NAN_PERCENT.search(text)[0]!r}"
    outputs = "\n".join(page.locator(".cell_output").all_inner_texts())
    shown = [m.group(0) for m in NON_FINITE.finditer(outputs)]
    assert not shown, f"{path}: outputs show non-finite results {shown[:5]}"

    shots = os.environ.get("GENEDU_SCREENSHOTS")  # a folder to keep a picture of every page
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / (path.replace("/", "_") + ".png")), full_page=True)
    real_errors = [e for e in errors if not any(a.search(e) for a in CONSOLE_ALLOW)]
    assert not real_errors, f"{path}: console errors: {real_errors}"
    assert not outside, f"{path}: requests left 127.0.0.1 (the book must work offline): {outside}"
    page.close()


STUDENTS_HTML = ROOT / "_build" / "students" / "_build" / "html"


@pytest.mark.parametrize("path", [p for p, is_chapter in _pages() if is_chapter])
def test_students_copy_keeps_exercises_and_leaves_out_solutions(path):
    """`make book HIDE_SOLUTIONS=1` (built by `make book-check`): what students get."""
    full, students = HTML / path, STUDENTS_HTML / path
    if not students.is_file():
        pytest.fail(f"{students.relative_to(ROOT)} is missing: run make book-check")
    full_html, students_html = full.read_text(), students.read_text()
    exercise = re.compile(r'class="exercise[ "][^"]*admonition')
    solution = re.compile(r'class="solution[ "][^"]*admonition')
    n_exercises = len(exercise.findall(full_html))
    assert n_exercises >= 3, f"{path}: expected exercises in the full book"
    assert len(exercise.findall(students_html)) == n_exercises, (
        f"{path}: the students' copy lost exercises"
    )
    assert solution.search(full_html), f"{path}: the full book has no solutions"
    assert not solution.search(students_html), f"{path}: the students' copy still shows solutions"
