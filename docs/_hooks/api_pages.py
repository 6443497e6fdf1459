"""MkDocs hook: fills the API reference from the package and renders Sphinx roles.

* A line ``<!-- api: seqmodels.cells -->`` in a page becomes one mkdocstrings block
  (``::: module``) for that package and for each of its modules and subpackages, found by
  walking the source tree. A module added to the package appears in the reference with no
  edit here; ``tests/test_docs_site.py`` checks the built inventory against the package.
* Docstrings are written with Sphinx roles (``:class:`Recurrent```, ``:func:`~a.b.c```),
  which Markdown would show verbatim; in the rendered HTML they become plain code.

Nothing here imports seqmodels: griffe reads the sources statically, so a build needs
neither torch nor a compiler.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
API_MARKER = re.compile(r"^<!-- api: ([\w.]+) -->$", flags=re.M)
ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc|obj|const|math):<code>(~?)([^<]+)</code>")


def package_modules(package: str) -> list[str]:
    """``package`` and every public module and subpackage below it, as dotted names, sorted."""
    base = ROOT.joinpath(*package.split("."))
    if base.with_suffix(".py").is_file():
        return [package]
    names = [package]
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
            if not parts:
                continue
        if any(part.startswith("_") for part in parts):
            continue
        names.append(".".join((package, *parts)))
    return sorted(names)


def _blocks(match: re.Match) -> str:
    return "\n\n".join(f"::: {name}" for name in package_modules(match.group(1)))


def on_page_markdown(markdown: str, **kwargs) -> str:
    return API_MARKER.sub(_blocks, markdown)


def _role(match: re.Match) -> str:
    target = match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if match.group(1) else target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return ROLE.sub(_role, html)
