"""Small fixes that keep the built book free of console errors, offline.

* sphinx-thebe registers its inline configuration script once per read of the sources,
  so pages can carry it twice ("Identifier 'THEBE_JS_URL' has already been declared"):
  drop exact duplicate scripts from each page.
* The widget manager typesets widget labels with MathJax 2's `MathJax.Hub.Queue`; the
  book uses MathJax 3, which has no Hub. `genedu-widgets.js` maps that call to MathJax 3.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        key = (getattr(script, "filename", None) or "", attributes)  # None and "" alike
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: later handlers add to this same list


def setup(app):
    app.add_js_file("genedu-widgets.js", priority=400)  # before the widget manager (500)
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
