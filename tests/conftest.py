import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tolerances(dtype: torch.dtype) -> dict:
    """float32: 1e-5 relative; float64: 1e-10 relative (small absolute floor for zeros)."""
    if dtype == torch.float64:
        return {"rtol": 1e-10, "atol": 1e-12}
    return {"rtol": 1e-5, "atol": 1e-6}
