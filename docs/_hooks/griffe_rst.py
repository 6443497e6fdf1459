"""Griffe extension: reads the reStructuredText habits of seqmodels' docstrings as Markdown.

The docstrings are written to read well in ``help()`` and to run as doctests; a few of their
conventions would render badly through the Google-style parser, so, before parsing:

* ``Example:`` / ``Example::`` followed by doctest lines becomes ``Examples:``, which the
  parser turns into code blocks (as plain text, ``x[0]`` would read as a Markdown link);
* a paragraph ending in ``::`` (a reStructuredText literal block follows) ends in ``:``;
  the indented block after it is a Markdown code block already.
"""

from __future__ import annotations

import re

import griffe

EXAMPLE = re.compile(r"^(\s*)Examples?::?[ \t]*\n(?=(?:[ \t]*\n)*\s*>>>)", flags=re.M)
LITERAL = re.compile(r"(\S)::[ \t]*$", flags=re.M)


def markdown_docstring(text: str) -> str:
    """``text`` with the conversions above."""
    return LITERAL.sub(r"\1:", EXAMPLE.sub(r"\1Examples:\n", text))


class RstHabits(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
