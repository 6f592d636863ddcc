"""Every build tells the truth: the conventions that keep each page's prose true of its output.

Two halves.

* On the committed chapters (the unit stage): every chapter has showcase cells (tagged
  ``showcase``: they rest on shipped checkpoints or recorded benchmarks, so every build
  shows the same result), each followed by a ``claim`` cell that asserts what the prose
  says about it; every glued number in the prose is glued by a cell of the same page; a
  chapter never points at "the article" or an issue, and names other chapters by a
  ``{doc}`` link, not by a number that drifts.
* On the chapters as the book build executed them (stage 5, after ``make book-check``):
  no output shows a traceback, an error, or a ``nan`` or ``inf`` printed as a result.
  ``GENEDU_EXECUTED=DIR`` points it at another folder of executed notebooks.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _has_assert(cell: dict) -> bool:
    return re.search(r"^\s*assert\b", _source(cell), re.M) is not None


# ------------------------------------------------------------------- the committed pages


def showcase_problems(cells: list[dict]) -> list[str]:
    """What is wrong with a chapter's showcase/claim cells (nothing: an empty list)."""
    showcases = [i for i, c in enumerate(cells) if "showcase" in _tags(c)]
    if not showcases:
        return ["no cell is tagged 'showcase': a chapter's claims must rest on shipped results"]
    problems = []
    for n, i in enumerate(showcases):
        end = showcases[n + 1] if n + 1 < len(showcases) else len(cells)
        claims = [
            j for j in range(i + 1, end) if "claim" in _tags(cells[j]) and _has_assert(cells[j])
        ]
        if not claims:
            problems.append(
                f"showcase cell {i} has no 'claim' cell with an assert after it "
                f"(before {'showcase cell ' + str(end) if end < len(cells) else 'the end'})"
            )
    problems += [
        f"claim cell {i} asserts nothing"
        for i, c in enumerate(cells)
        if "claim" in _tags(c) and not _has_assert(c)
    ]
    return problems


GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z0-9_.-]+)(?::[^`]*)?`")
GLUE_CALL = re.compile(r"glue\(\s*[\"']([A-Za-z0-9_.-]+)[\"']")


def glue_problems(cells: list[dict]) -> list[str]:
    """Names the prose glues that no code cell on the page glues."""
    used = {m for c in cells if c["cell_type"] == "markdown" for m in GLUE_ROLE.findall(_source(c))}
    glued = {m for c in cells if c["cell_type"] == "code" for m in GLUE_CALL.findall(_source(c))}
    return [
        f"the prose uses {{glue}}`{name}` but no cell glues it" for name in sorted(used - glued)
    ]


# A chapter speaks for itself, and a chapter number drifts as the table of contents changes.
FORBIDDEN_PROSE = [
    (re.compile(r"\bthe article\b", re.I), "refers to 'the article'"),
    (re.compile(r"\b(the|this|that) issue('s)?\b(?! of)", re.I), "refers to an issue"),
    (re.compile(r"\bissue \d+", re.I), "refers to an issue"),
    (re.compile(r"\bchapters? \d+", re.I), "names a chapter by number: use a {doc} link"),
]


def prose_problems(cells: list[dict]) -> list[str]:
    out = []
    for i, c in enumerate(cells):
        if c["cell_type"] != "markdown":
            continue
        for pattern, why in FORBIDDEN_PROSE:
            for m in pattern.finditer(_source(c)):
                out.append(f"markdown cell {i} {why}: {m.group(0)!r}")
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_showcase_results_are_followed_by_asserted_claims(path):
    problems = showcase_problems(_cells(path))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_number_is_glued_on_its_own_page(path):
    problems = glue_problems(_cells(path))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_chapter_speaks_for_itself_and_links_chapters(path):
    problems = prose_problems(_cells(path))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_train_here_cells_say_their_budget(path):
    text = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "code")
    if "budget(" in text and re.search(r"\bfit\(|train_step\(|\.fit\(", text):
        assert "budget_note(" in text, (
            f"{path.name} trains at a budget but no cell says which: end the train-here "
            "cells with genedu.train.budget_note(seconds, quick=..., full=...)"
        )


def test_the_checks_catch_what_they_are_for():
    """Each check fails on a page with the defect it exists for."""
    md = lambda s: {"cell_type": "markdown", "source": [s], "metadata": {}}  # noqa: E731
    code = lambda s, *tags: {"cell_type": "code", "source": [s], "metadata": {"tags": list(tags)}}  # noqa: E731
    assert showcase_problems([md("# A"), code("x = 1")])  # no showcase at all
    assert showcase_problems([code("auc = 0.9", "showcase"), code("print(auc)")])  # no claim
    assert showcase_problems(
        [code("a", "showcase"), code("b", "showcase"), code("assert b", "claim")]
    )
    assert showcase_problems([code("a", "showcase"), code("print(a)", "claim")])  # claims nothing
    assert not showcase_problems([code("a", "showcase"), md("A."), code("assert a", "claim")])
    assert glue_problems([md("AUROC {glue:text}`ch09_auc:.3f`"), code("viz.glue('other', 1)")])
    assert not glue_problems(
        [md("AUROC {glue:text}`ch09_auc:.3f`"), code("viz.glue('ch09_auc', a)")]
    )
    for bad in ("As the article says", "The issue's goal", "see chapter 2's slerp"):
        assert prose_problems([md(bad)]), bad
    assert not prose_problems([md("see {doc}`the GAN chapter <04_gans>`")])


# ------------------------------------------------------------------ the executed pages

EXECUTED = Path(
    os.environ.get("GENEDU_EXECUTED", ROOT / "_build" / "jupyter_execute" / "notebooks")
)

# A nan or inf printed as a number: "nan", "nan%", "-inf", "inf s"; not "info" or "infinite".
NON_FINITE = re.compile(r"(?<![\w.])[-+]?(nan|inf)(?![\w(-])", re.I)
ERROR_LINE = re.compile(r"^\s*(Traceback \(most recent call last\)|\w*(Error|Exception): )", re.M)


def _output_texts(cell: dict):
    for out in cell.get("outputs", []):
        if out["output_type"] == "error":
            yield "error", f"{out['ename']}: {out['evalue']}"
        elif out["output_type"] == "stream":
            yield out["name"], "".join(out["text"])
        else:
            plain = out.get("data", {}).get("text/plain")
            if plain is not None:
                yield "text/plain", "".join(plain)


def output_problems(cells: list[dict]) -> list[str]:
    """Tracebacks, errors and non-finite results in the outputs of an executed chapter."""
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        for kind, text in _output_texts(cell):
            if kind == "error" or ERROR_LINE.search(text):
                line = next((ln for ln in text.splitlines() if ERROR_LINE.search(ln)), text)
                problems.append(f"cell {i} shows an error: {line.strip()[:160]!r}")
            for m in NON_FINITE.finditer(text):
                context = text[max(0, m.start() - 60) : m.end() + 20].replace("\n", " ")
                problems.append(f"cell {i} prints a non-finite result: ...{context}...")
    return problems


def _executed() -> list[Path]:
    return [EXECUTED / p.name for p in NOTEBOOKS]


@pytest.mark.browser
@pytest.mark.parametrize("path", _executed(), ids=lambda p: p.name)
def test_executed_chapter_shows_no_error_and_no_non_finite_result(path):
    if not path.is_file():
        pytest.fail(f"{path} is missing: build the book first (make book-check)")
    problems = output_problems(_cells(path))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_the_output_check_catches_what_it_is_for():
    out = lambda text, name="stdout": {  # noqa: E731
        "cell_type": "code",
        "outputs": [{"output_type": "stream", "name": name, "text": [text]}],
    }
    assert output_problems([out("kept 0 of 2,000, nan% of them right")])
    assert output_problems([out("AUROC inf")])
    assert output_problems([out("Traceback (most recent call last):\n  ...", "stderr")])
    assert output_problems([out("ValueError: expected uint8 images")])
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}
    assert output_problems([{"cell_type": "code", "outputs": [error]}])
    fine = "trained in 3.1 s: information, infinite patience; AUROC 0.969 (nan-free)"
    assert not output_problems([out(fine)])
