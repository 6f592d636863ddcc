"""Every chapter's hidden solutions run, and satisfy their checkers (quick budgets).

The book never executes a solution: it sits in a dropdown (or is left out of an
instructor's build). So each notebook is run here with its solutions spliced in as code
cells right after the exercise they answer; where the exercise has a checker cell, the
checker is called again and must return True.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import kernel_wakeup  # noqa: E402  (a lost wake-up must not hang this test)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# A solution directive's body: from its opening fence to the closing fence of the same length.
SOLUTION = re.compile(r"^(`{3,})\{solution\}(.*?)^\1[ \t]*$", re.S | re.M)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
CHECKER_CALL = re.compile(r"^(checks\.\w+\(.*\));?\s*$", re.M)


def with_solutions(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int, int]:
    """A copy of nb with each solution's code after its cell; (notebook, solutions, checks)."""
    cells, n_solutions, n_checks = [], 0, 0
    last_checker = None
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type == "code":
            calls = CHECKER_CALL.findall(cell.source)
            last_checker = calls[-1] if calls else last_checker
            continue
        for _, solution in SOLUTION.findall(cell.source):
            code = "\n\n".join(PYTHON_BLOCK.findall(solution))
            if not code:
                continue  # a solution in words only
            n_solutions += 1
            if last_checker is not None:
                code += f"\nassert {last_checker}, 'the solution fails its own checker'"
                n_checks += 1
                last_checker = None
            cells.append(nbformat.v4.new_code_cell(code))
    out = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    return out, n_solutions, n_checks


def test_solution_parser_finds_code_and_checkers():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("def f(x):\n    return None\n\nchecks.f(f);"),
            nbformat.v4.new_markdown_cell(
                "````{solution} ex1\n:class: dropdown\n\n```python\ndef f(x):\n"
                "    return x\n```\n````"
            ),
            nbformat.v4.new_markdown_cell("````{solution} ex2\nIn words only.\n````"),
        ]
    )
    out, n_solutions, n_checks = with_solutions(nb)
    assert (n_solutions, n_checks) == (1, 1)
    assert out.cells[2].source.startswith("def f(x):\n    return x")
    assert out.cells[2].source.endswith("assert checks.f(f), 'the solution fails its own checker'")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_run_and_pass_their_checkers(path, monkeypatch):
    nb, n_solutions, _ = with_solutions(nbformat.read(path, as_version=4))
    if not n_solutions:
        pytest.skip(f"{path.name} has no code solutions")
    monkeypatch.setenv("GENEDU_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    kernel_wakeup.install()
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=dict(os.environ))
