"""Locate data files shipped inside installed packages, without importing them."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


class MissingPackageError(ImportError):
    """An embedded data set's package is not installed (``pip install 'seqmodels[data]'``)."""


def package_file(distribution: str, relative: str) -> Path:
    """The path of ``relative`` (as listed in the wheel's RECORD) of an installed distribution.

    Example:
        >>> package_file("torch", "torch/__init__.py").name
        '__init__.py'
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MissingPackageError(
            f"the data set needs the package {distribution!r}: "
            "pip install 'seqmodels[data]' (or pass a path to your own file)"
        ) from None
    for f in dist.files or ():
        if str(f).replace("\\", "/") == relative:
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    raise MissingPackageError(f"{distribution} is installed but has no file {relative!r}")
