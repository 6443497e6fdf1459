"""The compiled time loops of the gated kernels (``csrc/gated_steps.cpp``), of the Elman
cell (``csrc/elman_steps.cpp``), of the diagonal recurrence, IndRNN's
(``csrc/diagonal_steps.cpp``), and of the LayerNorm LSTM (``csrc/layernorm_steps.cpp``), with
the regularisers' mask generator (``csrc/bernoulli.cpp``): one extension, built on first use.

A Python step loop pays torch's dispatch cost on every op, and an LSTM step needs ~7 ops
forward and ~6 backward: with the loops in Python, :mod:`seqmodels.kernels.gated` trails
``nn.LSTM``'s fused oneDNN primitive on CPU (``seqmodels-bench cell=lstm``, with
``SEQMODELS_COMPILED=0`` for the Python loops). The C++ loops do one GEMM per step plus one
fused pass over the gates. Only the loops are compiled; the maths and the whole-sequence work
stay in Python. The same holds for IndRNN (:mod:`seqmodels.kernels.indrnn`), whose whole
elementwise walk is one compiled pass each way.

The extension is compiled with :func:`torch.utils.cpp_extension.load` (a C++ compiler and
ninja; ~40 s once, cached under ``TORCH_EXTENSIONS_DIR``, ``~/.cache/torch_extensions`` by
default) the first time a CPU float32/float64 gated or IndRNN kernel runs. Where it cannot be
built, the kernels warn once and run their Python loops (IndRNN: the engine), which compute the
same values.

``SEQMODELS_COMPILED=0`` in the environment, or :func:`use_compiled` (``False``), selects the
Python loops; ``SEQMODELS_COMPILED=1`` makes a failed build an error instead of a warning.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

_CSRC = Path(__file__).with_name("csrc")
SOURCES = tuple(
    _CSRC / f
    for f in (
        "gated_steps.cpp",
        "diagonal_steps.cpp",
        "layernorm_steps.cpp",
        "elman_steps.cpp",
        "bernoulli.cpp",
    )
)
_ENV = "SEQMODELS_COMPILED"

_module: ModuleType | None = None
_failure: str | None = None
_enabled = True


def _env_setting() -> str:
    value = os.environ.get(_ENV, "auto").strip().lower()
    if value not in {"0", "1", "auto"}:
        raise ValueError(f"{_ENV} must be 0, 1 or auto; got {value!r}")
    return value


# Vector instructions for the element-wise loops, by the capability torch detected for its own
# kernels on this CPU (so never one the CPU lacks). One build per capability: a cache shared
# by different machines keeps them apart.
_ISA_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mavx2", "-mfma"],
    "AVX2": ["-mavx2", "-mfma"],
}


def _build() -> ModuleType:
    from torch.utils.cpp_extension import load

    capability = torch.backends.cpu.get_cpu_capability()
    return load(
        name=f"seqmodels_steps_{capability.lower()}",
        sources=[str(s) for s in SOURCES],
        # -fno-trapping-math lets GCC vectorise the float->int step of the fast exp.
        # -fopenmp: the row-block threads are torch's OpenMP team (at::parallel_for); the
        # module's libgomp.so.1 resolves to the one torch already loaded, not a second copy.
        extra_cflags=["-O3", "-fno-trapping-math", "-fopenmp", *_ISA_FLAGS.get(capability, [])],
        extra_ldflags=["-fopenmp"],
        verbose=False,
    )


def extension() -> ModuleType | None:
    """The compiled module, building it on first call; ``None`` if off or unbuildable."""
    global _module, _failure
    setting = _env_setting()
    if setting == "0" or not _enabled:
        return None
    if _module is None and _failure is None:
        try:
            _module = _build()
        except Exception as error:  # no compiler, no ninja, a failed build: all the same here
            _failure = f"{type(error).__name__}: {error}"
            if setting == "1":
                raise RuntimeError(
                    f"{_ENV}=1 but the compiled time loops could not be built: {_failure}"
                ) from error
            warnings.warn(
                "seqmodels: the compiled Elman/LSTM/GRU/IndRNN/LayerNorm LSTM time loops could not "
                "be built; the BPTT backend runs its Python loops (same values, slower on CPU). "
                f"{_failure}",
                RuntimeWarning,
                stacklevel=3,
            )
    return _module


def usable(*tensors: Tensor) -> ModuleType | None:
    """The compiled module if it applies to these tensors (CPU, one dtype: float32/float64)."""
    first = tensors[0]
    if any(t.dtype != first.dtype or t.device != first.device for t in tensors):
        return None
    return extension() if available(first.device.type, first.dtype) else None


@torch.compiler.assume_constant_result
def available(device_type: str, dtype: torch.dtype) -> bool:
    """True when the compiled loops run tensors of this device type and dtype: a constant
    to ``torch.compile`` and ``torch.export``, which cannot trace the build."""
    return device_type == "cpu" and dtype in (torch.float32, torch.float64) and bool(extension())


def failure() -> str | None:
    """Why the build failed, or ``None`` (not tried yet, or built)."""
    return _failure


@contextlib.contextmanager
def use_compiled(enabled: bool) -> Iterator[None]:
    """Within the block, run the compiled loops (``True``) or Python's (the gated kernels'
    own, the engine for IndRNN)."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous
