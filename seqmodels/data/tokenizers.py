"""Tokenisers: character level and word level (words and punctuation, or whitespace).

A tokeniser is a plain function ``str -> list[str]``; :func:`get_tokenizer` builds one
from a name that can be stored in a JSON checkpoint.

Example:
    >>> get_tokenizer("char")("ab c")
    ['a', 'b', ' ', 'c']
    >>> get_tokenizer("word")("Hello, world!")
    ['Hello', ',', 'world', '!']
    >>> get_tokenizer("whitespace")("Hello, world!")
    ['Hello,', 'world!']
"""

from __future__ import annotations

import re
from collections.abc import Callable

Tokenizer = Callable[[str], list[str]]

#: Words (letters, digits, underscore) or single punctuation characters.
WORD_PATTERN = r"\w+|[^\w\s]"
LEVELS = ("char", "word", "whitespace")


def char_tokenize(text: str) -> list[str]:
    """Split ``text`` into characters (whitespace and newlines included)."""
    return list(text)


def whitespace_tokenize(text: str) -> list[str]:
    """Split ``text`` on runs of whitespace."""
    return text.split()


def make_word_tokenizer(pattern: str = WORD_PATTERN) -> Tokenizer:
    """A tokeniser returning every match of the regular expression ``pattern``."""
    compiled = re.compile(pattern)
    return lambda text: compiled.findall(text)


def get_tokenizer(level: str, pattern: str = WORD_PATTERN) -> Tokenizer:
    """The tokeniser for ``level`` in ``("char", "word", "whitespace")``."""
    if level == "char":
        return char_tokenize
    if level == "word":
        return make_word_tokenizer(pattern)
    if level == "whitespace":
        return whitespace_tokenize
    raise ValueError(f"unknown tokeniser level {level!r}; expected one of {LEVELS}")


def detokenize(tokens: list[str], level: str) -> str:
    """Join tokens back into text: no separator for characters, a space otherwise."""
    return "".join(tokens) if level == "char" else " ".join(tokens)
