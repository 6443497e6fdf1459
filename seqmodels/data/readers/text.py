"""Plain-text files and folders (language modelling)."""

from __future__ import annotations

from pathlib import Path

from seqmodels.data.errors import DataError, require_file


def decode_error(path: Path, data: bytes, err: UnicodeDecodeError, encoding: str) -> DataError:
    """A :class:`DataError` naming the file, the line and the byte that ``encoding`` rejects."""
    line = data.count(b"\n", 0, err.start) + 1
    return DataError(
        f"byte {data[err.start]:#04x} is not valid {encoding}; expected {encoding} text "
        "(pass encoding=...)",
        path=path,
        line=line,
    )


def decode_file(path: str | Path, encoding: str = "utf-8") -> str:
    """The decoded text of ``path``; a bad byte raises a :class:`DataError` with its line."""
    p = Path(path)
    data = p.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise decode_error(p, data, err, encoding) from None


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The text of ``path``; errors name the file (and the line of a bad byte).

    Raises:
        DataFileNotFoundError: the file does not exist.
        DataError: the file is empty or not valid ``encoding``.
    """
    p = require_file(path, "text file")
    text = decode_file(p, encoding)
    if not text.strip():
        raise DataError("file is empty; expected some text", path=p)
    return text


def read_text_documents(
    path: str | Path, *, pattern: str = "*.txt", encoding: str = "utf-8"
) -> list[tuple[str, str]]:
    """``(name, text)`` documents from a text file, or from every file under a folder.

    Files of a folder are those matching ``pattern`` at any depth, in sorted order;
    each file is one document.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("hi")
        >>> [name for name, _ in read_text_documents(d)]
        ['a.txt']
    """
    p = require_file(path, "text file or folder")
    if p.is_file():
        return [(p.name, read_text(p, encoding))]
    files = sorted(f for f in p.rglob(pattern) if f.is_file())
    if not files:
        raise DataError(f"no files matching {pattern!r}; expected text files", path=p)
    return [(str(f.relative_to(p)), read_text(f, encoding)) for f in files]
