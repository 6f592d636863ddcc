"""The book's own Sphinx extension: the benchmark tables, and fixes for a clean console.

* ``{benchmark-results}`` renders every benchmarks/results/*.json as a table, so the
  book shows exactly what the benchmark scripts printed, with their commands.

* sphinx-thebe registers its inline configuration script once per read of the sources,
  so pages can carry it twice ("Identifier 'THEBE_JS_URL' has already been declared"):
  drop exact duplicate scripts from each page.
* ``GENEDU_HIDE_SOLUTIONS=1`` (what ``make book HIDE_SOLUTIONS=1`` sets) turns on
  sphinx-exercise's ``hide_solutions``: a copy of the book for students, every
  solution left out, built from the same _config.yml.
* ``GENEDU_BOOK_CACHE=DIR`` (what ``make test`` sets for its two builds) keeps each
  executed notebook in a jupyter-cache at DIR, so that the students' copy, built right
  after the full one from the same code cells, reuses those runs instead of executing
  every chapter again. ``make test`` empties DIR first, so every chapter still runs
  once per check; ``make book`` does not set it and executes every chapter every time.
* Notebook runs during the build use ``kernel_wakeup`` so that a missed wake-up in
  jupyter_client cannot hang the build (see that module).
* The widget manager typesets widget labels with MathJax 2's `MathJax.Hub.Queue`; the
  book uses MathJax 3, which has no Hub. `genedu-widgets.js` maps that call to MathJax 3.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import kernel_wakeup
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
# What each row shows; the machine, thread count, torch and date go under the table,
# once per distinct setting, so that the table fits the page.
COLUMNS = {
    "model": lambda r: r["model"],
    "dataset": lambda r: r["dataset"],
    "metric": lambda r: r["metric"],
    "value": lambda r: f"{r['value']:g} {r['unit']}",
    "time (s)": lambda r: f"{r['wall_seconds']:g}",
}


def _table(records: list[dict]) -> nodes.table:
    table = nodes.table(classes=["benchmark-results"])
    group = nodes.tgroup(cols=len(COLUMNS))
    table += group
    group.extend(nodes.colspec(colwidth=w) for w in (3, 3, 2, 2, 1))

    def row(cells):
        r = nodes.row()
        for c in cells:
            r += nodes.entry("", nodes.paragraph(text=str(c)))
        return r

    head, body = nodes.thead(), nodes.tbody()
    head += row(COLUMNS)
    for rec in records:
        body += row(cell(rec) for cell in COLUMNS.values())
    group += head
    group += body
    return table


def _setting(r: dict) -> str:
    return f"{r['device']}, {r['threads']} threads, torch {r['torch']}, measured {r['date']}"


class BenchmarkResults(SphinxDirective):
    """One section per results file: a table of its records and the commands behind them."""

    def run(self):
        out = []
        files = sorted(RESULTS.glob("*.json"))
        for path in files:
            self.env.note_dependency(str(path))
            records = json.loads(path.read_text())
            section = nodes.rubric(text=f"{path.stem} (benchmarks/results/{path.name})")
            commands = sorted({r["command"] for r in records})
            settings = "; ".join(sorted({_setting(r) for r in records}))
            out += [section, _table(records), nodes.paragraph(text=f"Machine: {settings}.")]
            out += [nodes.paragraph(text="Reproduce with:")]
            out += [nodes.literal_block(text="\n".join(commands), language="bash")]
        if not files:
            out.append(nodes.paragraph(text="No benchmark results yet: run make bench."))
        return out


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        key = (getattr(script, "filename", None) or "", attributes)  # None and "" alike
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: later handlers add to this same list


def _hide_solutions(app, config):
    if os.environ.get("GENEDU_HIDE_SOLUTIONS") == "1":
        config.hide_solutions = True
    cache = os.environ.get("GENEDU_BOOK_CACHE")
    if cache:
        config.nb_execution_mode = "cache"
        config.nb_execution_cache_path = str(Path(cache).resolve())


def setup(app):
    kernel_wakeup.install()
    app.connect("config-inited", _hide_solutions)
    app.add_directive("benchmark-results", BenchmarkResults)
    app.add_js_file("genedu-widgets.js", priority=400)  # before the widget manager (500)
    app.add_css_file("genedu.css")  # showcase and claim cells, marked for the reader
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
