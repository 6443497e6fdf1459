"""Seattle's hourly temperatures in 2010 (NOAA, public domain), shipped as package data.

``seattle_temps.csv`` next to this module holds the ``temp`` column (°F) of the
``seattle-temps.csv`` file of vega-datasets 0.9.0 (MIT; the data are NOAA's, public
domain): 8,759 hourly values in local time from 2010-01-01 00:00. The hour lost to daylight
saving on 2010-03-14 (02:00) is absent, and the ``date`` column says so.
"""

from __future__ import annotations

from importlib.resources import as_file, files

import torch

from seqmodels.data.readers.timeseries import read_series_csv

#: The data file, shipped inside the package (see ``[tool.setuptools.package-data]``).
CSV_NAME = "seattle_temps.csv"


def seattle_temps() -> torch.Tensor:
    """``(8759, 1)`` float32 hourly temperatures in °F, read from the shipped CSV.

    Example:
        >>> seattle_temps().shape
        torch.Size([8759, 1])
    """
    # as_file: a real path even when the package is imported from a zip archive.
    with as_file(files(__package__) / CSV_NAME) as path:
        return read_series_csv(path, ["temp"])
