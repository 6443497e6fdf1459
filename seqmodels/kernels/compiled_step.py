"""A step, or a step's derivative, compiled into one fused kernel by Inductor.

The engine runs a user's step as a handful of small aten ops per time step, and dispatching
each costs more than its arithmetic on a batch of a few thousand numbers. For a cell written
only as its step (no hand-written fast form), the engine traces the step, and the vjp it
derives from it, into graphs of aten ops (``make_fx``) and hands each graph to Inductor
(``compile_fx_inner``), which fuses the pointwise ops and reductions into one generated
kernel per graph and calls it without Dynamo's guards (``seqmodels-bench cell=lnlstm``
shows the engine against its step loop). A graph is compiled once per cell and tensor
signature, and only once that signature has run :data:`HOT_CALLS` times, so a one-off call
never waits for a compiler. float64 steps are not compiled unless asked: float64 is for
checking gradients, and its last bits must not change when a graph turns hot mid-run.

``SEQMODELS_COMPILE_STEPS``: ``auto`` (the default: compile hot steps, and fall back to the
traced graph with one warning where compiling fails), ``0`` (never compile) or ``1``
(compile on the first call, and raise if compiling fails).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

_ENV = "SEQMODELS_COMPILE_STEPS"
#: Calls of one signature before its graph is compiled, under ``auto``.
HOT_CALLS = 3
_failure: str | None = None


def setting() -> str:
    value = os.environ.get(_ENV, "auto").strip().lower()
    if value not in {"0", "1", "auto"}:
        raise ValueError(f"{_ENV} must be 0, 1 or auto; got {value!r}")
    return value


def _decompositions() -> dict:
    from torch._inductor.decomposition import select_decomp_table

    return select_decomp_table()


class Graph:
    """``fn`` traced on example tensors; compiled by Inductor once it has been called
    :data:`HOT_CALLS` times (or at once, with ``SEQMODELS_COMPILE_STEPS=1``).

    ``fn`` takes and returns flat tensors. A function that cannot be traced (control flow
    on tensor values) runs as it is. The engine asks for :meth:`runner` once per sequence."""

    def __init__(self, fn: Callable[..., Sequence[Tensor]], example: Sequence[Tensor]) -> None:
        self.calls = 0
        self.compiled: Callable | None = None
        # Traced and compiled on contiguous tensors, and always called on such (a compiled
        # graph assumes the strides it saw; the first step's state may be an expanded zero).
        self.example = [t.detach().contiguous() for t in example]
        mode = setting()
        try:
            # Inductor's decompositions at trace time: the graph is then what it compiles.
            decompositions = _decompositions() if mode != "0" else None
            self.graph = make_fx(fn, decomposition_table=decompositions)(*self.example)
        except Exception:  # not traceable: run the function itself
            self.graph, mode = fn, "0"
        if mode == "auto" and any(t.dtype == torch.float64 for t in self.example):
            # float64 is the dtype gradients are checked in: its values must not change in
            # the last bits when the graph turns hot mid-run (gradcheck re-runs backward).
            mode = "0"
        self.mode = mode
        if mode == "1":
            self._compile()

    def runner(self) -> Callable[..., Sequence[Tensor]]:
        """The callable for one more sequence: ``(*tensors) -> outputs``. Counts the call
        and compiles the graph once it is hot."""
        self.calls += 1
        if self.mode == "auto" and self.calls >= HOT_CALLS and _failure is None:
            self._compile()
        run = self.compiled
        if run is not None:
            return lambda *tensors: run([t.contiguous() for t in tensors])
        graph = self.graph
        return lambda *tensors: graph(*(t.contiguous() for t in tensors))

    def _compile(self) -> None:
        global _failure
        self.mode = "done"
        try:
            from torch._inductor.compile_fx import compile_fx_inner

            with torch.no_grad():
                self.compiled = compile_fx_inner(self.graph, self.example)
        except Exception as error:  # no compiler, an unsupported op: the graph still runs
            if setting() == "1":
                raise RuntimeError(f"{_ENV}=1 but a step could not be compiled: {error}") from error
            _failure = f"{type(error).__name__}: {error}"
            warnings.warn(
                f"seqmodels: a step could not be compiled by Inductor; the engine runs its "
                f"traced graph (same values, slower). {_failure}",
                RuntimeWarning,
                stacklevel=3,
            )
        self.example = []  # the compiled graph keeps what it needs
