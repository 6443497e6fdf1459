"""CSV/TSV readers: labelled sequences (classification/regression) and source/target pairs.

Every problem raises a :class:`~seqmodels.data.errors.DataError` naming the file and
the line, or is counted and skipped with ``skip_invalid=True`` (one warning at the end).
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seqmodels.data.errors import DataError, SkipLog, require_file
from seqmodels.data.readers.text import decode_file

Column = str | int


@dataclass
class Record:
    """One example read from a file: ``source`` (text or steps), ``target``, where it was."""

    source: str | list[list[float]]
    target: str | float | list[str] | None
    path: str | None = None
    line: int | None = None

    @property
    def origin(self) -> tuple[str | None, int | None]:
        return (self.path, self.line)


def sniff_delimiter(path: Path, delimiter: str | None) -> str:
    """``delimiter`` if given, else tab for ``.tsv``/``.tab`` files and comma otherwise."""
    if delimiter is not None:
        return delimiter
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def iter_rows(
    path: str | Path, *, delimiter: str | None = None, encoding: str = "utf-8"
) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` for each non-blank row (quoted multi-line fields allowed).

    Raises :class:`DataError` for a missing or empty file and for bad encoding.
    """
    p = require_file(path)
    delim = sniff_delimiter(p, delimiter)
    seen = False
    with p.open(newline="", encoding=encoding) as f:
        reader = csv.reader(f, delimiter=delim, quoting=csv.QUOTE_MINIMAL)
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError:
                decode_file(p, encoding)  # raises with the line of the bad byte
                raise
            except csv.Error as err:
                raise DataError(f"malformed row ({err})", path=p, line=reader.line_num) from None
            line, start = start, reader.line_num + 1
            if not row or all(not field.strip() for field in row):
                continue
            seen = True
            yield line, row
    if not seen:
        raise DataError("file is empty; expected delimited rows", path=p)


def resolve_column(column: Column, header: list[str] | None, path: Path) -> int:
    """Index of ``column`` (a header name or a 0-based index)."""
    if isinstance(column, int):
        return column
    if header is None:
        if column.isdigit():
            return int(column)
        raise DataError(f"column {column!r} named but header=False; use an index", path=path)
    try:
        return header.index(column)
    except ValueError:
        raise DataError(
            f"no column {column!r}; expected one of {header}", path=path, line=1
        ) from None


def parse_float(text: str, *, what: str, path: str | Path, line: int) -> float:
    """``float(text)``, or a :class:`DataError` saying which value could not be parsed."""
    try:
        value = float(text)
    except ValueError:
        msg = f"{what}: cannot parse {text!r}; expected a number"
        raise DataError(msg, path=path, line=line) from None
    if not math.isfinite(value):  # NaN, inf, or a number too large for a float
        msg = f"{what}: value is {text.strip()!r} ({value}); expected a finite number"
        raise DataError(msg, path=path, line=line)
    return value


def parse_steps(
    text: str, *, feature_separator: str, path: str | Path, line: int, what: str = "sequence"
) -> list[list[float]]:
    """Steps separated by whitespace, features of a step by ``feature_separator``.

    ``"1,2 3,4 5,6"`` -> ``[[1, 2], [3, 4], [5, 6]]``; every step needs as many features.
    """
    steps = []
    for k, step in enumerate(text.split()):
        values = [
            parse_float(v, what=f"{what} step {k + 1}", path=path, line=line)
            for v in step.split(feature_separator)
        ]
        if steps and len(values) != len(steps[0]):
            raise DataError(
                f"{what} step {k + 1} has {len(values)} features; expected {len(steps[0])} "
                "like the first step",
                path=path,
                line=line,
            )
        steps.append(values)
    if not steps:
        raise DataError(f"{what} is empty; expected at least one step", path=path, line=line)
    return steps


def read_labelled(
    path: str | Path,
    *,
    text_column: Column = "text",
    label_column: Column = "label",
    header: bool = True,
    delimiter: str | None = None,
    input_type: str = "text",
    target_type: str = "class",
    feature_separator: str = ",",
    columns: int | None = None,
    skip_invalid: bool = False,
    encoding: str = "utf-8",
) -> list[Record]:
    """Rows of a CSV/TSV file with a text (or numeric sequence) column and a label column.

    ``input_type="sequence"`` parses the column with :func:`parse_steps`;
    ``target_type="regression"`` parses the label as a number. Every row must have
    ``columns`` fields (default: as many as the header, or the first row).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
        >>> _ = p.write_text("text,label\\nhello,greeting\\n")
        >>> [(r.source, r.target, r.line) for r in read_labelled(p)]
        [('hello', 'greeting', 2)]
    """
    p = Path(path)
    skips = SkipLog(skip_invalid, str(p))
    records: list[Record] = []
    rows = iter_rows(p, delimiter=delimiter, encoding=encoding)
    first_line, first = next(rows)
    names = first if header else None
    ti, li = resolve_column(text_column, names, p), resolve_column(label_column, names, p)
    width = columns or len(first)
    like = "" if columns else (" like the header" if header else " like the first row")
    if not header:
        rows = itertools.chain([(first_line, first)], rows)
    for line, row in rows:
        try:
            if len(row) != width:
                raise DataError(
                    f"expected {width} columns{like}, got {len(row)}", path=p, line=line
                )
            text, label = row[ti], row[li].strip()
            source: str | list[list[float]] = text
            if input_type == "sequence":
                source = parse_steps(text, feature_separator=feature_separator, path=p, line=line)
            elif not text.strip():
                raise DataError("text is empty; expected some text", path=p, line=line)
            target: str | float = label
            if target_type == "regression":
                target = parse_float(label, what="label", path=p, line=line)
            elif not label:
                raise DataError("label is empty; expected a label", path=p, line=line)
            records.append(Record(source, target, str(p), line))
        except DataError as err:
            skips.invalid(err)
    skips.report()
    if not records:
        raise DataError("no valid rows; expected at least one example", path=p)
    return records


def read_pairs(
    path: str | Path,
    *,
    source_column: Column = 0,
    target_column: Column = 1,
    header: bool = False,
    delimiter: str | None = "\t",
    skip_invalid: bool = False,
    encoding: str = "utf-8",
) -> list[Record]:
    """Source/target text pairs, one per row (TSV by default, no header)."""
    return read_labelled(
        path,
        text_column=source_column,
        label_column=target_column,
        header=header,
        delimiter=delimiter,
        columns=2,
        skip_invalid=skip_invalid,
        encoding=encoding,
    )
