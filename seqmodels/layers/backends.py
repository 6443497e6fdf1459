"""Which path a recurrent module's call takes: the backends, and ``"auto"`` resolved.

Every layer and drop-in takes ``backend=``:

* ``"bptt"``: the hand-written back-propagation through time (:mod:`seqmodels.kernels`);
* ``"autograd"``: the step loop, differentiated by autograd (:func:`~seqmodels.layers.scan`);
* ``"torch"``: torch's own fused kernels (``torch._VF.rnn_tanh`` / ``rnn_relu`` / ``lstm`` /
  ``gru``: cuDNN on CUDA, ATen/oneDNN on the CPU) run over the module's own parameters.
  Only the drop-ins :class:`~seqmodels.ElmanRNN`, :class:`~seqmodels.LSTM` and
  :class:`~seqmodels.GRU` with their standard cells can take it: torch's kernels run whole
  multi-layer modules of exactly those cells;
* ``"auto"`` (the default): per call, the fastest correct one of these for the input's
  device and dtype and the module's options, by :func:`resolve_backend`.

:func:`resolve_backend` is the one place the choice is made. It reads a :class:`CallTraits`
(what a call looks like: plain values, so it is tested directly with any device, a CUDA
one included, on a CPU-only machine) and returns a :class:`Resolution` with its reason.
``module.resolved_backend(x)`` on a drop-in tells which path a call on ``x`` takes; a
``DEBUG`` log record on the ``seqmodels.backends`` logger names the reason whenever
``"auto"`` leaves the fastest path.

The CPU rows of the choice are :data:`CPU_TORCH_FASTER`: the configurations where torch's
own CPU kernel was measured faster than the hand-written BPTT (``seqmodels-bench
cell=lstm``, the ``torch`` and ``bptt`` rows). Anything not listed there runs ``bptt`` on the
CPU, which the same benchmark measures faster than torch's module for every cell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

#: Every name ``backend=`` takes.
BACKENDS = ("auto", "bptt", "autograd", "torch")
#: The paths a call can run; ``"auto"`` resolves to one of them.
PATHS = ("bptt", "autograd", "torch")

logger = logging.getLogger("seqmodels.backends")


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else a ``ValueError`` naming them."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    return backend


@dataclass(frozen=True)
class CpuRule:
    """A CPU configuration where torch's kernel trains and infers faster than ``bptt``.

    It applies to ``mode`` (torch's name of the recurrence) in ``dtype`` on a CPU whose
    vector ISA ``torch.backends.cpu.get_cpu_capability()`` reports as ``capability``, for
    batches of at least ``min_batch`` sequences. ``measured`` is the evidence.
    """

    mode: str
    capability: str
    min_batch: int
    dtype: torch.dtype
    measured: str


#: Where torch's own CPU kernel beats the hand-written BPTT (``seqmodels-bench``, 2 threads).
#: With AVX2 only, the LSTM's step GEMM blocks are half as wide and oneDNN's fused LSTM
#: primitive wins on every batched configuration; at batch 1 (F) bptt stays ahead, where the
#: per-step overhead of oneDNN's call dominates.
CPU_TORCH_FASTER: tuple[CpuRule, ...] = (
    CpuRule(
        "LSTM",
        "AVX2",
        2,
        torch.float32,
        "AMD EPYC (AVX2): bptt trains at 0.54x and infers at 0.46x nn.LSTM on config A "
        "(32, 100, 64, 128), 2.12x training on F (batch 1); seqmodels-bench cell=lstm",
    ),
)


@dataclass(frozen=True)
class CallTraits:
    """What :func:`resolve_backend` needs to know about one call, as plain values.

    * ``requested``: the module's ``backend``;
    * ``torch_mode``: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"`` when torch's
      kernels compute exactly this module, else ``None`` with ``why_not_torch`` saying why;
    * ``has_kernel``: every cell has a hand-written BPTT;
    * ``device_type``, ``dtype``, ``batch_size``: of the input;
    * ``cpu_capability``: ``torch.backends.cpu.get_cpu_capability()`` (``"AVX512"``, ...);
    * ``deterministic``: ``torch.are_deterministic_algorithms_enabled()``;
    * ``dropout_active``: inter-layer dropout runs in this call (training, ``dropout > 0``,
      more than one layer);
    * ``exporting``: inside ``torch.onnx.export`` or ``torch.jit.trace``, which record
      torch's kernel as one operator but cannot trace the hand-written BPTT.
    """

    requested: str
    torch_mode: str | None
    has_kernel: bool
    why_not_torch: str | None
    device_type: str
    dtype: torch.dtype
    batch_size: int
    cpu_capability: str
    deterministic: bool = False
    dropout_active: bool = False
    exporting: bool = False


@dataclass(frozen=True)
class Resolution:
    """The path a call takes (one of :data:`PATHS`) and why."""

    backend: str
    reason: str


def resolve_backend(call: CallTraits) -> Resolution:
    """The path ``call`` takes: the requested one, or for ``"auto"`` the fastest correct one.

    ``"auto"``, in order:

    1. exporting (ONNX, ``torch.jit.trace``): ``torch``, one operator with ``T`` dynamic;
       where torch cannot run the module, ``autograd``, the step loop unrolled over the
       example's ``T`` (the hand-written BPTT's compiled loops cannot be traced);
    2. torch cannot compute the module (a research or user cell, a seqmodels-only option):
       ``bptt`` where every cell has a hand-written BPTT, else ``autograd``;
    3. ``torch.use_deterministic_algorithms(True)`` on CUDA with inter-layer dropout:
       not ``torch``, since cuDNN's dropout between layers is nondeterministic even then;
    4. any device but the CPU: ``torch`` (cuDNN's persistent kernels; the hand-written loops
       there are launch-bound, one kernel chain per step);
    5. the CPU: ``torch`` for the configurations in :data:`CPU_TORCH_FASTER`, else ``bptt``.

    An explicit ``"bptt"`` or ``"torch"`` that cannot run the call raises ``ValueError``
    naming the alternative.
    """
    check_backend(call.requested)
    loop = "bptt" if call.has_kernel else "autograd"
    if call.requested == "torch":
        if call.torch_mode is None:
            raise ValueError(f"backend='torch' cannot run this module: {call.why_not_torch}")
        return Resolution("torch", "requested")
    if call.requested == "bptt":
        if not call.has_kernel:
            raise ValueError("backend='bptt' needs a hand-written BPTT for every cell")
        if call.exporting:
            alternative = (
                "backend='auto' or 'torch' (torch's kernel: one operator, T dynamic)"
                if call.torch_mode is not None
                else "backend='autograd' (the step loop, unrolled over the example's T steps)"
            )
            raise ValueError(
                "backend='bptt' cannot be exported: the hand-written BPTT runs compiled loops "
                f"that tracing does not record; export with {alternative}"
            )
        return Resolution("bptt", "requested")
    if call.requested == "autograd":
        return Resolution("autograd", "requested")

    if call.exporting:
        if call.torch_mode is not None:
            return Resolution("torch", "exporting: torch's kernel is one operator, T dynamic")
        return Resolution(
            "autograd",
            f"exporting, and torch's kernels cannot run it ({call.why_not_torch}): the step "
            "loop, unrolled over the example's T steps",
        )
    if call.torch_mode is None:
        return Resolution(loop, f"torch's kernels cannot run it: {call.why_not_torch}")
    if call.device_type != "cpu":
        if call.deterministic and call.dropout_active and call.device_type == "cuda":
            resolution = Resolution(
                loop,
                "torch.use_deterministic_algorithms(True): cuDNN's dropout between layers is "
                "nondeterministic (pytorch/pytorch#35661)",
            )
            logger.debug("backend='auto' leaves torch's kernel: %s", resolution.reason)
            return resolution
        return Resolution("torch", f"{call.device_type}: torch's fused kernels")
    for rule in CPU_TORCH_FASTER:
        if (
            rule.mode == call.torch_mode
            and rule.capability == call.cpu_capability
            and rule.dtype == call.dtype
            and call.batch_size >= rule.min_batch
        ):
            return Resolution("torch", f"CPU table: {rule.measured}")
    return Resolution(loop, "cpu: the hand-written BPTT measured faster than torch's kernel")


def exporting() -> bool:
    """Inside ``torch.onnx.export`` or ``torch.jit.trace``."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
