"""Hand-written back-propagation through time: a cell's fast path, one kernel per cell class.

A kernel runs a whole recurrence as one ``torch.autograd.Function`` with an explicit
backward. It is not a second copy of the cell: the cell (:mod:`seqmodels.cells`) defines one
step, and its kernel computes the same maths over all steps from the cell's own parameters.
Kernels sit above the cells and below the layers (as ``torch._VF`` sits below
``torch.nn.RNN``): a layer with ``backend="bptt"`` asks :func:`kernel_for` for its cell's.

A cell gets a kernel in one of two ways:

* a method ``fused_sequence(x, state, lengths, reverse) -> (output, final_state)`` on the
  cell's class (research code that writes its own backward);
* :func:`register_kernel` for the cell's exact class (how :class:`~seqmodels.ElmanCell` gets
  :func:`~seqmodels.kernels.elman.elman_cell_kernel`). A subclass does not inherit it: it
  may change the step, and a kernel must never compute something other than the step loop.

Kernel signature: ``kernel(cell, x (T, N, F), state, lengths (N,) int64 | None, reverse)``
returns ``(output (T, N, H), final_state)``; outputs are zero and the state frozen at padded
steps, and ``reverse=True`` (only with ``lengths=None``) walks time from the last step.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from seqmodels.cells.base import RecurrentCell
from seqmodels.cells.elman import ElmanCell
from seqmodels.cells.gated import GRUCell, LSTMCell
from seqmodels.core.state import State
from seqmodels.kernels.elman import ElmanBPTT, elman_bptt, elman_cell_kernel
from seqmodels.kernels.gated import (
    GRUBPTT,
    LSTMBPTT,
    gru_bptt,
    gru_cell_kernel,
    lstm_bptt,
    lstm_cell_kernel,
)

Kernel = Callable[[RecurrentCell, Tensor, State, "Tensor | None", bool], tuple[Tensor, State]]

_KERNELS: dict[type, Kernel] = {}


def register_kernel(cell_class: type, kernel: Kernel) -> None:
    """Use ``kernel`` for cells of exactly ``cell_class`` when a layer's backend is ``bptt``."""
    _KERNELS[cell_class] = kernel


def _method_kernel(cell, x, state, lengths, reverse):
    return cell.fused_sequence(x, state, lengths, reverse)


def kernel_for(cell: RecurrentCell) -> Kernel | None:
    """The hand-written BPTT for ``cell``, or ``None`` if it has none."""
    if callable(getattr(type(cell), "fused_sequence", None)):
        return _method_kernel
    return _KERNELS.get(type(cell))


register_kernel(ElmanCell, elman_cell_kernel)
register_kernel(LSTMCell, lstm_cell_kernel)
register_kernel(GRUCell, gru_cell_kernel)

__all__ = [
    "ElmanBPTT",
    "LSTMBPTT",
    "GRUBPTT",
    "elman_bptt",
    "lstm_bptt",
    "gru_bptt",
    "kernel_for",
    "register_kernel",
    "Kernel",
]
