"""The project's own conventions: notebooks without outputs, Binder in step with pip."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_follow_the_chapter_conventions(path):
    nb = json.loads(path.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    first_code = next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "except ImportError" in first_code and "pip install" in first_code, (
        f"{path.name}: the first code cell must install genedu on Colab when it is missing"
    )
    assert "Learning goals" in text, f"{path.name}: state the learning goals at the top"
    assert text.count("{exercise}") >= 3, f"{path.name}: end with 3 or more exercises"
    assert text.count("{solution}") >= text.count("{exercise}"), f"{path.name}: a solution each"
    assert "budget(" in text, f"{path.name}: set sizes with genedu.train.budget(quick=, full=)"


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    missing = [p.stem for p in NOTEBOOKS if f"notebooks/{p.stem}" not in toc]
    assert not missing, f"notebooks not in _toc.yml: {missing}"


def _pip_requirements() -> dict[str, Requirement]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    reqs = [Requirement(line) for line in pip if not line.startswith("-")]
    return {r.name.lower(): r for r in reqs}


def test_binder_environment_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["book"] if "ipykernel" in r]
    env = _pip_requirements()
    assert set(env) == {r.name.lower() for r in wanted}, (
        f"environment.yml and pyproject.toml differ: only in environment.yml "
        f"{sorted(set(env) - {r.name.lower() for r in wanted})}, only in pyproject.toml "
        f"{sorted({r.name.lower() for r in wanted} - set(env))}"
    )
    for req in wanted:
        if req.name == "torch":  # Binder pins the build; it must satisfy the package's range
            pinned = next(iter(env["torch"].specifier)).version
            assert req.specifier.contains(pinned), f"torch=={pinned} is outside {req.specifier}"
        else:
            assert env[req.name.lower()].specifier == req.specifier, (
                f"{req.name}: environment.yml says {env[req.name.lower()].specifier}, "
                f"pyproject.toml says {req.specifier}"
            )


def test_binder_and_makefile_pin_the_same_torch():
    makefile = (ROOT / "Makefile").read_text()
    pin = re.search(r"^TORCH := torch==(\S+)", makefile, re.M).group(1)
    assert str(_pip_requirements()["torch"].specifier) == f"=={pin}"


def test_the_makefile_takes_torch_from_the_index_it_is_given():
    """PyPI by default; `make ... TORCH_INDEX=URL` installs the pinned torch from URL
    (PyTorch's CPU index, on a Linux laptop, instead of PyPI's CUDA build)."""

    def install_line(*overrides):
        out = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), ".venv/.installed", *overrides],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return next(line for line in out.splitlines() if "pip install --quiet torch==" in line)

    assert "--index-url" not in install_line()
    assert install_line("TORCH_INDEX=https://example.org/cpu").endswith(
        "--index-url https://example.org/cpu"
    )


def test_no_machine_paths_in_the_project():
    pattern = re.compile(r"/(work|root|home/[a-z]+)/")
    tracked = [
        p
        for p in ROOT.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".md", ".yml", ".toml", ".ipynb", ".json", ".bib", ".js"}
    ]
    skip = {".venv", "node_modules", "_build", "vendor", ".git"}
    hits = [
        str(p.relative_to(ROOT))
        for p in tracked
        if not skip & set(p.relative_to(ROOT).parts) and pattern.search(p.read_text())
    ]
    assert not hits, f"machine paths in {hits}"
