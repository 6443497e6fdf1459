"""CoNLL-U reader (per-token tagging): sentences of word forms and their tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqmodels.data.errors import DataError, SkipLog, require_file
from seqmodels.data.readers.text import decode_file

FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")


@dataclass
class Sentence:
    """Word forms and tags of one sentence; ``lines`` are the line numbers of its words."""

    tokens: list[str]
    tags: list[str]
    path: str
    lines: list[int]

    @property
    def line(self) -> int:
        """Line of the first word."""
        return self.lines[0]

    @property
    def origin(self) -> tuple[str, int]:
        return (self.path, self.line)


def read_conllu(
    path: str | Path,
    *,
    tag_column: str = "upos",
    skip_invalid: bool = False,
    encoding: str = "utf-8",
) -> list[Sentence]:
    """Sentences of a CoNLL-U file, with the tags of ``tag_column`` (e.g. ``"upos"``).

    Comment lines (``#``) are skipped, and so are multi-word token ranges (``1-2``) and
    empty nodes (``1.1``), which carry no tag of their own. A word line must have
    the 10 tab-separated fields; with ``skip_invalid`` a sentence holding a bad line
    is skipped and counted.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.conllu"
        >>> _ = p.write_text("# c\\n1\\tHi\\thi\\tINTJ\\t_\\t_\\t0\\troot\\t_\\t_\\n\\n")
        >>> s = read_conllu(p)[0]
        >>> s.tokens, s.tags, s.line
        (['Hi'], ['INTJ'], 2)
    """
    if tag_column not in FIELDS[1:]:
        raise ValueError(f"unknown tag_column {tag_column!r}; expected one of {FIELDS[1:]}")
    col = FIELDS.index(tag_column)
    p = require_file(path, "CoNLL-U file")
    skips = SkipLog(skip_invalid, str(p))
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []
    bad: DataError | None = None
    nonblank = False

    def flush() -> None:
        nonlocal tokens, tags, numbers, bad
        if bad is not None:
            skips.invalid(bad)
        elif tokens:
            sentences.append(Sentence(tokens, tags, str(p), numbers))
        tokens, tags, numbers, bad = [], [], [], None

    lines = decode_file(p, encoding).splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            flush()
            continue
        nonblank = True
        if line.startswith("#") or bad is not None:
            continue
        fields = line.split("\t")
        if len(fields) != len(FIELDS):
            bad = DataError(
                f"expected 10 tab-separated CoNLL-U fields (ID FORM LEMMA UPOS XPOS FEATS "
                f"HEAD DEPREL DEPS MISC), got {len(fields)}",
                path=p,
                line=number,
            )
            continue
        word_id = fields[0]
        if "-" in word_id or "." in word_id:
            continue
        if not word_id.isdigit():
            msg = f"ID {word_id!r} is not a word index; expected 1, 2, ..."
            bad = DataError(msg, path=p, line=number)
            continue
        if fields[col] in ("", "_") and tag_column in ("upos", "xpos"):
            msg = f"word has no {tag_column.upper()} tag; expected a tag"
            bad = DataError(msg, path=p, line=number)
            continue
        numbers.append(number)
        tokens.append(fields[1])
        tags.append(fields[col])
    flush()
    skips.report()
    if not nonblank:
        raise DataError("file is empty; expected CoNLL-U sentences", path=p)
    if not sentences:
        raise DataError("no valid sentences; expected CoNLL-U word lines", path=p)
    return sentences
