"""Hand-written back-propagation through time: the engine, and the kernels layers ask for.

A layer with ``backend="bptt"`` asks :func:`kernel_for` for its cell's kernel (as
``torch.nn.RNN`` calls ``torch._VF``). A kernel runs a whole recurrence in one direction
with an explicit backward. It is not a second copy of the cell: the cell defines one step.

* Every :class:`~seqmodels.cells.base.ProjectedCell` runs on the engine
  (:func:`~seqmodels.kernels.engine.engine_kernel`): a cell written only as its step gets
  its derivative from autograd, one with a hand-written ``step_backward`` gets that.
* A fast form of one exact cell class (:func:`register_kernel`: Elman's in-place walk,
  :mod:`seqmodels.kernels.elman`; the LSTM's and GRU's compiled CPU loops,
  :mod:`seqmodels.kernels.gated`; IndRNN's, :mod:`seqmodels.kernels.indrnn`; the LayerNorm
  LSTM's, :mod:`seqmodels.kernels.layernorm`) runs where it applies and hands every other
  call to the engine; tests hold each to its cell's definition. A subclass does not inherit
  it: it may change the step, and a kernel must never compute something other than the step
  loop.
* Inside ``torch.compile`` and ``torch.export``, a kernel that calls the C++ extension
  cannot be traced; Elman's, the LSTM's, the GRU's and IndRNN's run there as ``torch.library``
  custom ops (:mod:`seqmodels.kernels.ops`, registered as each class's ``traced`` kernel),
  one op per layer and direction each way.
* A cell of any other kind may bring a whole kernel of its own as a method
  ``fused_sequence(x, state, lengths, reverse) -> (output, final_state)``.

Kernel signature: ``kernel(cell, x (T, N, F), state, lengths (N,) int64 | None, reverse)``
returns ``(output (T, N, H), final_state)``; outputs are zero and the state frozen at padded
steps, and ``reverse=True`` (only with ``lengths=None``) walks time from the last step. A
kernel that also applies recurrent dropout and zoneout takes their masks as a sixth argument
and says so (:func:`takes_regularisation`); a layer gives every other regularised call to
the engine.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from seqmodels.cells.base import ProjectedCell, RecurrentCell
from seqmodels.cells.elman import ElmanCell
from seqmodels.cells.gated import GRUCell, LSTMCell
from seqmodels.cells.indrnn import IndRNNCell
from seqmodels.cells.layernorm import LayerNormLSTMCell
from seqmodels.core.state import State
from seqmodels.kernels.elman import elman_cell_kernel
from seqmodels.kernels.engine import EngineBPTT, definition, engine_kernel, swapped
from seqmodels.kernels.gated import gru_cell_kernel, lstm_cell_kernel
from seqmodels.kernels.indrnn import indrnn_cell_kernel
from seqmodels.kernels.layernorm import layernorm_lstm_cell_kernel
from seqmodels.kernels.ops import elman_kernel, gru_kernel, indrnn_kernel, lstm_kernel

Kernel = Callable[[RecurrentCell, Tensor, State, "Tensor | None", bool], tuple[Tensor, State]]

_KERNELS: dict[type, Kernel] = {}
_TRACED: dict[type, Kernel] = {}


def register_kernel(cell_class: type, kernel: Kernel, traced: Kernel | None = None) -> None:
    """Use ``kernel`` for cells of exactly ``cell_class`` when a layer's backend is ``bptt``,
    and ``traced`` (the same computation as ops that tracing records) inside
    ``torch.compile`` and ``torch.export``."""
    _KERNELS[cell_class] = kernel
    if traced is not None:
        _TRACED[cell_class] = traced


def _method_kernel(cell, x, state, lengths, reverse):
    return cell.fused_sequence(x, state, lengths, reverse)


def kernel_for(cell: RecurrentCell) -> Kernel | None:
    """The hand-written BPTT for ``cell``, or ``None`` if it has none."""
    if callable(getattr(type(cell), "fused_sequence", None)):
        return _method_kernel
    if torch.compiler.is_compiling() and type(cell) in _TRACED:
        return _TRACED[type(cell)]
    kernel = _KERNELS.get(type(cell))
    if kernel is None and isinstance(cell, ProjectedCell) and _steps_as_defined(type(cell)):
        return engine_kernel
    return kernel


def _steps_as_defined(cls: type) -> bool:
    """True when the class's step loop is its definition: it overrides none of the methods
    a layer's step loop calls, so the engine computes what ``backend="autograd"`` does."""
    # Not project_input: the engine calls it too, so overriding it changes both alike.
    loop = ("forward", "forward_projected", "projected_step")
    return all(getattr(cls, name) is getattr(ProjectedCell, name) for name in loop)


def traceable(cell: RecurrentCell) -> bool:
    """True when ``cell``'s kernel runs as ops that ``torch.compile`` and ``torch.export``
    record (:mod:`seqmodels.kernels.ops`)."""
    return type(cell) in _TRACED


def takes_regularisation(kernel: Kernel | None) -> bool:
    """True when ``kernel`` applies recurrent dropout and zoneout itself (a sixth argument,
    a :class:`~seqmodels.kernels.regularisation.Regularisation`): the engine does, and a fast
    form that says so with ``kernel.takes_regularisation = True``."""
    return kernel is engine_kernel or bool(getattr(kernel, "takes_regularisation", False))


def run_kernel(
    cell: RecurrentCell,
    x: Tensor,
    state: State,
    weights: dict[str, Tensor | None] | None = None,
    lengths: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, State]:
    """``cell``'s kernel on ``x`` ``(T, N, F)``, with any of its parameters replaced by the
    tensors in ``weights`` (by name, as ``torch.func.functional_call``): the functional form
    of a layer's ``backend="bptt"``, for ``gradcheck`` and transforms over the weights."""
    kernel = kernel_for(cell)
    if kernel is None:
        raise ValueError(f"{type(cell).__name__} has no hand-written BPTT")
    with swapped(cell, weights or {}):
        return kernel(cell, x, state, lengths, reverse)


register_kernel(ElmanCell, elman_cell_kernel, traced=elman_kernel)
register_kernel(LSTMCell, lstm_cell_kernel, traced=lstm_kernel)
register_kernel(GRUCell, gru_cell_kernel, traced=gru_kernel)
register_kernel(IndRNNCell, indrnn_cell_kernel, traced=indrnn_kernel)
register_kernel(LayerNormLSTMCell, layernorm_lstm_cell_kernel)

__all__ = [
    "EngineBPTT",
    "definition",
    "engine_kernel",
    "kernel_for",
    "run_kernel",
    "register_kernel",
    "takes_regularisation",
    "traceable",
    "Kernel",
]
