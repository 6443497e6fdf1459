"""Errors for bad input data, and the bookkeeping of rows skipped on request.

Every reader reports a problem as a :class:`DataError` that names the file, the
line number (1-based) and what was expected, e.g.::

    labels.csv, line 7: expected 2 columns (text, label), got 3

With ``skip_invalid=True`` a reader records the problem in a :class:`SkipLog`
instead and logs one warning with the count at the end, so nothing is dropped
silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("seqmodels.data")


def _where(path: str | Path | None, line: int | None) -> str:
    parts = []
    if path is not None:
        parts.append(str(path))
    if line is not None:
        parts.append(f"line {line}")
    return ", ".join(parts)


class DataError(ValueError):
    """Bad input data: names the file, the line (1-based) and what was expected.

    Example:
        >>> str(DataError("expected 2 columns, got 3", path="a.csv", line=7))
        'a.csv, line 7: expected 2 columns, got 3'
    """

    def __init__(
        self, message: str, *, path: str | Path | None = None, line: int | None = None
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = message
        where = _where(path, line)
        super().__init__(f"{where}: {message}" if where else message)


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file or folder that does not exist (also a ``FileNotFoundError``)."""


def require_file(path: str | Path, what: str = "data file") -> Path:
    """Return ``path`` as a :class:`Path`, raising :class:`DataFileNotFoundError` if missing."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataFileNotFoundError(f"{what} not found", path=p)
    return p


@dataclass
class SkipLog:
    """Counts rows skipped because they were invalid, and logs the count once.

    ``skip=False`` makes :meth:`invalid` raise the error instead.

    Example:
        >>> skips = SkipLog(skip=True, source="a.csv")
        >>> skips.invalid(DataError("bad number", path="a.csv", line=3))
        >>> skips.count
        1
    """

    skip: bool = False
    source: str = ""
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def invalid(self, error: DataError) -> None:
        """Record ``error`` (when skipping) or raise it."""
        if not self.skip:
            raise error
        self.count += 1
        if len(self.examples) < 3:
            self.examples.append(str(error))

    def report(self) -> int:
        """Log a warning with the number of skipped rows (if any); return the count."""
        if self.count:
            log.warning(
                "skipped %d invalid row(s) in %s; first: %s",
                self.count,
                self.source or "input",
                " | ".join(self.examples),
            )
        return self.count
