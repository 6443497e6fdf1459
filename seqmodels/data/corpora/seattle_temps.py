"""Seattle's hourly temperatures in 2010 (NOAA, public domain), embedded in the repository."""

from __future__ import annotations

import torch

from seqmodels.data.corpora import seattle_temps_data


def seattle_temps() -> torch.Tensor:
    """``(8759, 1)`` float32 hourly temperatures in °F (see :mod:`.seattle_temps_data`).

    Example:
        >>> seattle_temps().shape
        torch.Size([8759, 1])
    """
    values = [float(v) for v in seattle_temps_data.VALUES.split()]
    return torch.tensor(values, dtype=torch.float32).unsqueeze(-1)
