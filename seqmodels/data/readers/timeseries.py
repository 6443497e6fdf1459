"""CSV time series: numeric columns of a header-row CSV, in file order."""

from __future__ import annotations

from pathlib import Path

import torch

from seqmodels.data.errors import DataError, SkipLog
from seqmodels.data.readers.delimited import iter_rows, parse_float


def read_series_csv(
    path: str | Path,
    columns: list[str],
    *,
    delimiter: str | None = None,
    skip_invalid: bool = False,
    encoding: str = "utf-8",
) -> torch.Tensor:
    """The named numeric ``columns`` of a CSV with a header row, as ``(T, len(columns))``.

    Other columns (dates, notes) are not parsed. A row with the wrong number of fields,
    an empty or unparsable value raises a :class:`DataError` naming the file, line and
    column; with ``skip_invalid`` the row is left out of the series and counted.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
        >>> _ = p.write_text("date,temp\\n2020-01-01,3.5\\n2020-01-02,4\\n")
        >>> read_series_csv(p, ["temp"]).tolist()
        [[3.5], [4.0]]
    """
    p = Path(path)
    rows = iter_rows(p, delimiter=delimiter, encoding=encoding)
    _, header = next(rows)
    header = [h.strip() for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"no column(s) {missing}; expected some of {header}", path=p, line=1)
    index = [header.index(c) for c in columns]
    skips = SkipLog(skip_invalid, str(p))
    values: list[list[float]] = []
    for line, row in rows:
        try:
            if len(row) != len(header):
                raise DataError(
                    f"expected {len(header)} columns like the header, got {len(row)}",
                    path=p,
                    line=line,
                )
            parsed = [
                parse_float(row[i].strip(), what=f"column {c!r}", path=p, line=line)
                for i, c in zip(index, columns, strict=True)
            ]
            values.append(parsed)
        except DataError as err:
            skips.invalid(err)
    skips.report()
    if not values:
        raise DataError("no data rows; expected numeric rows after the header", path=p)
    return torch.tensor(values, dtype=torch.float32)
