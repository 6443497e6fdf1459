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

Opt-in, in the manner of ``torch.backends.cudnn.benchmark``: with
``seqmodels.layers.backends.benchmark = True``, ``"auto"`` on the CPU times torch's kernel
and the hand-written BPTT once per call signature (sizes, dtype, padding, training or not,
threads) and keeps the faster one for that signature (:func:`benchmarked`). The timing
calls compute nothing the caller sees: no gradient accumulates, and the random state
(dropout) is restored.

The CPU rows of the static choice are :data:`CPU_TORCH_FASTER`: the configurations where torch's
own CPU kernel was measured faster than the hand-written BPTT (``seqmodels-bench
cell=lstm``, the ``torch`` and ``bptt`` rows). Anything not listed there runs ``bptt`` on the
CPU, which the same benchmark measures faster than torch's module for every cell.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Hashable
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
    """A CPU configuration where torch's kernel was measured faster than ``bptt``.

    It applies to ``mode`` (torch's name of the recurrence) in ``dtype`` on a CPU whose
    vector ISA ``torch.backends.cpu.get_cpu_capability()`` reports as ``capability`` (and
    whose ``/proc/cpuinfo`` vendor is ``vendor``, or any when ``None``), for batches of at
    least ``min_batch`` sequences and hidden sizes in ``[min_hidden, max_hidden)``, in training
    (``training=True``: something needs a gradient), inference (``False``) or both
    (``None``). ``measured`` is the evidence.
    """

    mode: str
    capability: str
    measured: str
    vendor: str | None = None
    training: bool | None = None
    min_batch: int = 2
    min_hidden: int = 0
    max_hidden: int | None = None
    dtype: torch.dtype = torch.float32

    def matches(self, call: CallTraits) -> bool:
        return (
            self.mode == call.torch_mode
            and self.capability == call.cpu_capability
            and self.vendor in (None, call.vendor)
            and self.training in (None, call.needs_grad)
            and self.dtype == call.dtype
            and call.batch_size >= self.min_batch
            and call.hidden_size >= self.min_hidden
            and (self.max_hidden is None or call.hidden_size < self.max_hidden)
        )


#: Where torch's own CPU kernel beats the hand-written BPTT (``seqmodels-bench cell=lstm
#: implementations=[bptt,torch] rounds=5 threads=2``, float32; ``ATEN_CPU_CAPABILITY=avx2``
#: selects the AVX2 row on an AVX-512 machine). Every other configuration, and every Elman
#: and GRU one, runs ``bptt``, which the same benchmark measures faster than torch's kernel
#: on both ISAs. Why the LSTM differs: its step GEMM blocks are half as wide without
#: AVX-512 and oneDNN's fused LSTM primitive then wins on every batched configuration but
#: training at hidden sizes of 256 and more; at batch 1 (F) the per-step overhead of
#: oneDNN's call dominates and ``bptt`` stays ahead. A machine unlike these can time both
#: paths itself: :data:`benchmark`.
CPU_TORCH_FASTER: tuple[CpuRule, ...] = (
    CpuRule(
        "LSTM",
        "AVX2",
        "AVX2: bptt infers at 0.26-0.70x nn.LSTM on configs A-E, torch's kernel at "
        "0.87-1.06x (AMD EPYC, 2026-12-05)",
        training=False,
    ),
    CpuRule(
        "LSTM",
        "AVX2",
        "AVX2: bptt trains at 0.39-0.40x nn.LSTM on A, C, D (hidden 128), torch's kernel at "
        "0.96-0.97x; at hidden 256 and 512 (B, E) bptt reads 1.29x and 0.95x "
        "(AMD EPYC, 2026-12-05)",
        training=True,
        max_hidden=256,
    ),
    CpuRule(
        "LSTM",
        "AVX512",
        "AMD EPYC with AVX-512: bptt infers at 0.86-0.91x nn.LSTM on B (hidden 256) and "
        "0.84-0.87x on E (512) in two runs, torch's kernel at 0.98-1.01x; at hidden 128 "
        "(A, C, D) bptt reads 0.84-1.22x (2026-12-05)",
        vendor="AuthenticAMD",
        training=False,
        min_hidden=256,
    ),
)


@dataclass(frozen=True)
class CallTraits:
    """What :func:`resolve_backend` needs to know about one call, as plain values.

    * ``requested``: the module's ``backend``;
    * ``torch_mode``: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"`` when torch's
      kernels compute exactly this module, else ``None`` with ``why_not_torch`` saying why;
    * ``has_kernel``: every cell has a hand-written BPTT;
    * ``device_type``, ``dtype``, ``batch_size``: of the input; ``hidden_size``: the module's;
    * ``cpu_capability``: ``torch.backends.cpu.get_cpu_capability()`` (``"AVX512"``, ...);
    * ``vendor``: the CPU's vendor (:func:`cpu_vendor`: ``"GenuineIntel"``, ...);
    * ``needs_grad``: grad mode is on and the input or a parameter requires grad;
    * ``deterministic``: ``torch.are_deterministic_algorithms_enabled()``;
    * ``dropout_active``: inter-layer dropout runs in this call (training, ``dropout > 0``,
      more than one layer);
    * ``exporting``: inside ``torch.onnx.export``, ``torch.jit.trace`` or
      ``torch.export.export``, which record torch's kernel as one operator;
    * ``compiling``: inside ``torch.compile`` or ``torch.export.export`` (Dynamo), which
      record custom ops;
    * ``traceable``: every cell's kernel runs as custom ops there
      (:func:`seqmodels.kernels.traceable`); ONNX and ``torch.jit.trace`` record none;
    * ``padded``: the call has ``lengths`` (torch's kernel then runs packed, and packing
      reads the lengths on the host, which ``torch.compile`` cannot trace).
    """

    requested: str
    torch_mode: str | None
    has_kernel: bool
    why_not_torch: str | None
    device_type: str
    dtype: torch.dtype
    batch_size: int
    cpu_capability: str
    hidden_size: int = 0
    vendor: str = ""
    needs_grad: bool = True
    deterministic: bool = False
    dropout_active: bool = False
    exporting: bool = False
    compiling: bool = False
    traceable: bool = False
    padded: bool = False


@dataclass(frozen=True)
class Resolution:
    """The path a call takes (one of :data:`PATHS`) and why."""

    backend: str
    reason: str


def resolve_backend(call: CallTraits) -> Resolution:
    """The path ``call`` takes: the requested one, or for ``"auto"`` the fastest correct one.

    ``"auto"``, in order:

    1. exporting (ONNX, ``torch.jit.trace``, ``torch.export``): ``torch``, one operator
       that any runtime knows; where torch cannot run the module, under ``torch.export``
       ``bptt`` where every kernel is a custom op, else ``autograd``, the step loop
       unrolled over the example's ``T``;
    2. inside ``torch.compile``, the choice below, with ``bptt`` only where every kernel
       is a custom op on the CPU (one op per layer and direction each way: the eager loops
       at eager speed), else ``autograd``, the step loop, which Dynamo traces whole; and
       never ``torch`` for a padded batch, which torch's kernel would pack on the host;
    3. torch cannot compute the module (a research or user cell, a seqmodels-only option):
       ``bptt`` where every cell has a hand-written BPTT, else ``autograd``;
    4. ``torch.use_deterministic_algorithms(True)`` on CUDA with inter-layer dropout:
       not ``torch``, since cuDNN's dropout between layers is nondeterministic even then;
    5. any device but the CPU: ``torch`` (cuDNN's persistent kernels; the hand-written loops
       there are launch-bound, one kernel chain per step);
    6. the CPU: ``torch`` for the configurations in :data:`CPU_TORCH_FASTER`, else ``bptt``.

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
        if call.exporting and not (call.compiling and call.traceable):
            alternative = (
                "backend='auto' or 'torch' (torch's kernel: one operator)"
                if call.torch_mode is not None
                else "backend='autograd' (the step loop, unrolled over the example's T steps)"
            )
            raise ValueError(
                "backend='bptt' cannot be exported here: the hand-written BPTT runs compiled "
                "loops that ONNX and torch.jit.trace do not record (torch.export records "
                f"the drop-ins' cells as custom ops); export with {alternative}"
            )
        return Resolution("bptt", "requested")
    if call.requested == "autograd":
        return Resolution("autograd", "requested")

    if call.exporting:
        if call.torch_mode is not None:
            return Resolution("torch", "exporting: torch's kernel is one operator")
        if call.compiling and call.traceable:
            return Resolution("bptt", "torch.export: every kernel is a custom op")
        return Resolution(
            "autograd",
            f"exporting, and torch's kernels cannot run it ({call.why_not_torch}): the step "
            "loop, unrolled over the example's T steps",
        )
    if call.compiling and not (call.traceable and call.device_type == "cpu"):
        loop = "autograd"  # Dynamo traces the step loop whole; the kernels would break it
    if call.compiling and call.padded:  # torch's kernel would pack on the host
        return Resolution(loop, "torch.compile of a padded batch: packing is not traceable")
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
        if rule.matches(call):
            return Resolution("torch", f"CPU table: {rule.measured}")
    return Resolution(loop, "cpu: the hand-written BPTT measured faster than torch's kernel")


#: Time the candidate paths of ``"auto"`` on the CPU once per call signature (off by default).
benchmark: bool = False
#: Rounds per path when benchmarking (the median is compared), after one untimed call.
BENCHMARK_ROUNDS = 3
_benchmarked: dict[tuple, Resolution] = {}


def benchmarked(
    key: Hashable, paths: dict[str, Callable[[], object]], leaves: list[torch.Tensor]
) -> Resolution:
    """The faster of ``paths`` (name -> a call that runs it) for the signature ``key``,
    timed once and then remembered. Each timed call runs its path and, when ``leaves`` is
    not empty, the backward of its outputs' sum into ``leaves`` (not accumulated into
    ``.grad``), with the random state restored afterwards."""
    if key in _benchmarked:
        return _benchmarked[key]

    def run(path: Callable[[], object]) -> float:
        with torch.random.fork_rng(devices=[]):
            start = time.perf_counter()
            output, _ = path()
            if leaves:
                torch.autograd.grad(output.sum(), leaves, allow_unused=True)
            return time.perf_counter() - start

    times = {}
    for name, path in paths.items():
        run(path)  # untimed: first-call costs (a compiled extension loading) are not speed
        times[name] = statistics.median(run(path) for _ in range(BENCHMARK_ROUNDS))
    best = min(times, key=times.get)
    reason = "benchmark: " + ", ".join(f"{n} {t * 1e3:.2f} ms" for n, t in times.items())
    _benchmarked[key] = Resolution(best, reason)
    return _benchmarked[key]


def cpuinfo(field: str) -> str:
    """The first value of ``field`` in ``/proc/cpuinfo`` (``"vendor_id"``, ``"model name"``),
    or ``""`` where there is no such file or field."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


# Facts of the machine, read once at import: as plain constants they are also constants to
# torch.compile, which cannot trace a call that returns a string.
_CPU_CAPABILITY = torch.backends.cpu.get_cpu_capability()
_CPU_VENDOR = cpuinfo("vendor_id")


def cpu_capability() -> str:
    """``torch.backends.cpu.get_cpu_capability()``: the vector ISA torch's kernels use
    (``"AVX512"``, ``"AVX2"``, ...; ``ATEN_CPU_CAPABILITY`` chooses it at start-up)."""
    return _CPU_CAPABILITY


def cpu_vendor() -> str:
    """The CPU's vendor (``"GenuineIntel"``, ``"AuthenticAMD"``; ``""`` where unknown)."""
    return _CPU_VENDOR


def compiling() -> bool:
    """Inside ``torch.compile`` or ``torch.export.export`` (Dynamo traces the call)."""
    return torch.compiler.is_compiling()


def exporting() -> bool:
    """Inside ``torch.onnx.export``, ``torch.jit.trace`` or ``torch.export.export``."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.compiler.is_exporting()
