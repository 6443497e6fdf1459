import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small RNN matrices gain nothing from a second thread, and on a busy 2-core machine
    two OpenMP threads spin-wait on each other (measured: 50-100x slower per step)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
