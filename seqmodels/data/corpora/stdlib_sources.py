"""Python source code of a fixed list of standard-library modules (character LM on code)."""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path

from seqmodels.data.errors import DataFileNotFoundError

#: Modules present as single files in every CPython from 3.10 on. Their contents
#: still change between versions: :func:`corpus_digest` identifies the exact text.
STDLIB_FILES: tuple[str, ...] = (
    "abc.py",
    "argparse.py",
    "ast.py",
    "base64.py",
    "bisect.py",
    "calendar.py",
    "colorsys.py",
    "contextlib.py",
    "copy.py",
    "csv.py",
    "dataclasses.py",
    "difflib.py",
    "enum.py",
    "fnmatch.py",
    "fractions.py",
    "functools.py",
    "glob.py",
    "gzip.py",
    "heapq.py",
    "keyword.py",
    "linecache.py",
    "numbers.py",
    "operator.py",
    "pprint.py",
    "queue.py",
    "random.py",
    "shlex.py",
    "statistics.py",
    "string.py",
    "textwrap.py",
    "threading.py",
    "tokenize.py",
    "traceback.py",
    "types.py",
    "typing.py",
    "uuid.py",
    "weakref.py",
)


def stdlib_dir() -> Path:
    """The folder of this interpreter's pure-Python standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_sources(files: tuple[str, ...] | list[str] = STDLIB_FILES) -> list[tuple[str, str]]:
    """``(file name, source)`` of each of ``files`` in this interpreter's stdlib.

    Example:
        >>> [name for name, _ in stdlib_sources(["bisect.py"])]
        ['bisect.py']
    """
    root = stdlib_dir()
    docs = []
    for name in files:
        path = root / name
        if not path.is_file():
            raise DataFileNotFoundError("standard-library source file not found", path=path)
        docs.append((name, path.read_text("utf-8")))
    return docs


def corpus_digest(documents: list[tuple[str, str]]) -> str:
    """SHA-256 over names and texts: record it to know exactly which text a run used."""
    h = hashlib.sha256()
    for name, text in documents:
        h.update(name.encode() + b"\0" + text.encode("utf-8") + b"\0")
    return h.hexdigest()
