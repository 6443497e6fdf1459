"""The README and the documentation pages: snippets run as written, the README stays short,
no lab history, and the public docstrings' examples run."""

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: Pages whose every ```python block runs as written (docs/tasks.md's example runs in
#: tests/tasks/test_task_docs_subclass.py; other pages hold fragments).
EXECUTED_PAGES = [
    README,
    DOCS / "index.md",
    DOCS / "cells-and-layers.md",
    DOCS / "cells.md",
    DOCS / "research-cells.md",
    DOCS / "backends.md",
]
#: The user documentation, the contributors' pages and the changelog.
PAGES = [README, ROOT / "CHANGELOG.md", *sorted(DOCS.rglob("*.md"))]
HISTORY = re.compile(r"issue [0-9]|session|this week|tried and dropped", flags=re.I)
README_MAX_BYTES = 12 * 1024


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


SNIPPETS = [(path, index) for path in EXECUTED_PAGES for index in range(len(_blocks(path)))]

MODULES = [
    "seqmodels.core.errors",
    "seqmodels.core.padding",
    "seqmodels.core.state",
    "seqmodels.cells.base",
    "seqmodels.cells.elman",
    "seqmodels.cells.gated",
    "seqmodels.layers.recurrent",
    "seqmodels.layers.bidirectional",
    "seqmodels.layers.stacked",
    "seqmodels.layers.elman_rnn",
    "seqmodels.layers.gated",
    "seqmodels.layers.elman",
    "seqmodels.gradcheck",
]


def test_the_bench_runs_the_user_cell_on_the_cells_page():
    """``seqmodels-bench cell=user`` runs the class docs/cells.md shows, line for line."""
    import inspect

    from seqmodels.diagnostics.user_cell import CIFGCell

    assert inspect.getsource(CIFGCell) in (DOCS / "cells.md").read_text(encoding="utf-8")


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; at most {README_MAX_BYTES}"


def test_readme_has_snippets():
    assert len(_blocks(README)) >= 2


@pytest.mark.parametrize(
    ("path", "index"), SNIPPETS, ids=[f"{p.relative_to(ROOT)}-{i}" for p, i in SNIPPETS]
)
def test_snippet_runs(path, index):
    code = _blocks(path)[index]
    name = f"{path.relative_to(ROOT)} snippet {index}"
    exec(compile(code, name, "exec"), {"__name__": "docs"})


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_no_lab_history(path):
    text = path.read_text(encoding="utf-8")
    found = [m.group(0) for m in HISTORY.finditer(text)]
    assert not found, f"{path.relative_to(ROOT)} mentions {found}"


def test_readme_links_resolve():
    """The README is not part of the built site, so its links are checked here."""
    text = README.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).is_file(), f"README.md links to missing {target}"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
