import os
import tempfile
from pathlib import Path

import pytest
import torch

#: The core (``make test-fast``): cells, layers, kernels, backends and their parity with torch.
CORE = {
    "test_architecture.py",
    "test_backends.py",
    "test_bptt.py",
    "test_bptt_parity.py",
    "test_bptt_transforms.py",
    "test_compiled_kernels.py",
    "test_elman_cell.py",
    "test_elman_layer.py",
    "test_elman_rnn_api.py",
    "test_elman_rnn_parity.py",
    "test_gated_init.py",
    "test_gated_parity.py",
    "test_generic_layer_errors.py",
    "test_generic_layers.py",
    "test_lstm_inference.py",
    "test_memory.py",
    "test_truncated_bptt.py",
}


# Inductor's on-disk cache (torch.compile) does not tell kernels built under one
# ATEN_CPU_CAPABILITY from another's: a process under the other ISA reused them and crashed
# or computed wrong values. One cache per ISA, unless the caller chose one.
os.environ.setdefault(
    "TORCHINDUCTOR_CACHE_DIR",
    os.path.join(
        tempfile.gettempdir(), f"torchinductor_seqmodels_{torch.backends.cpu.get_cpu_capability()}"
    ),
)


def pytest_configure(config):
    config.addinivalue_line("markers", "core: cells, layers, kernels and parity (make test-fast)")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # One torch thread per xdist worker: the workers already use every core, and two
        # OpenMP pools per core slow every GEMM down. Tests of threading set their own.
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).name in CORE:
            item.add_marker(pytest.mark.core)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tolerances(dtype: torch.dtype) -> dict:
    """float32: 1e-5 relative; float64: 1e-10 relative (small absolute floor for zeros)."""
    if dtype == torch.float64:
        return {"rtol": 1e-10, "atol": 1e-12}
    return {"rtol": 1e-5, "atol": 1e-6}
