"""The docstring examples of the compare/diagnostics modules run as written."""

import doctest
import importlib

import pytest

MODULES = [
    "seqmodels.diagnostics.numerics",
    "seqmodels.diagnostics.implementations",
    "seqmodels.diagnostics.precision",
    "seqmodels.diagnostics.stepping",
    "seqmodels.diagnostics.gradients",
    "seqmodels.diagnostics.plots",
    "seqmodels.diagnostics.run_plots",
    "seqmodels.diagnostics.throughput",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
