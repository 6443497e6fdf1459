"""The README's snippets and the public docstrings' examples run as written."""

import doctest
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)

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


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index):
    exec(compile(SNIPPETS[index], f"README.md snippet {index}", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
