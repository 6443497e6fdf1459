"""Run one cell over time: the loop at the heart of every layer."""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor

from seqmodels.cells.base import RecurrentCell, State
from seqmodels.layers.base import SequenceLayer
from seqmodels.layers.sequence import Lengths, map_state, reverse_padded


def scan(
    cell: RecurrentCell, x: Tensor, state: State, lengths: Lengths | None, reverse: bool = False
) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x`` ``(T, N, F)`` from ``state``; returns ``(outputs (T, N, H), final)``.

    Reference semantics (what the fast path below computes)::

        for t in range(T):
            out_t, new = cell(x[t], state)
            state = new where t < lengths else state   # padding never changes a state
            outputs[t] = out_t where t < lengths else 0

    The fast path: when the cell has ``project_input``, the input half of every step is
    one large GEMM before the loop and each step only does the recurrent half. Time slices
    are taken with ``unbind`` rather than ``x[t]``: indexing a tensor that requires grad
    once per step makes autograd build a full-size zero gradient per step (cost ~T^2).
    Masking only starts at the first step where some sequence has ended.

    ``reverse=True`` walks time backwards from each sequence's last real step; outputs stay
    aligned with ``x``'s time axis.
    """
    if reverse and lengths is not None:  # per-sequence reversal, then a forward scan
        output, state = scan(cell, reverse_padded(x, lengths), state, lengths)
        return reverse_padded(output, lengths), state
    steps = x.shape[0]
    projected = cell.project_input(x)
    if projected is not None:
        inputs, step = projected.unbind(0), cell.forward_projected
    else:
        inputs, step = x.unbind(0), cell.forward
    if reverse:
        inputs = inputs[::-1]
    first_padded = steps if lengths is None else lengths.min
    mask = None if lengths is None else lengths.mask(steps).unsqueeze(-1)  # (T, N, 1)
    outputs = []
    for t, input_t in enumerate(inputs):
        output_t, new_state = step(input_t, state)
        if t >= first_padded:
            keep = mask[t]  # (N, 1): True where step t is real
            new_state = map_state(partial(_where, keep), new_state, state)
        state = new_state
        outputs.append(output_t)
    if reverse:
        outputs.reverse()
    output = torch.stack(outputs)  # (T, N, H)
    if mask is not None:
        output = output.masked_fill(~mask, 0.0)
    return output, state


def _where(keep: Tensor, new: Tensor, old: Tensor) -> Tensor:
    return torch.where(keep, new, old)


class Recurrent(SequenceLayer):
    """Runs any :class:`~seqmodels.RecurrentCell` over a sequence, in one direction.

    Shapes: input ``(T, N, cell.input_size)`` (see :class:`SequenceLayer` for batch-first,
    unbatched, lengths and packed input); output ``(T, N, cell.output_size)``; state
    ``(1, N, H)`` in and out (one slot), or a tuple of those for tuple-state cells.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanCell, Recurrent
        >>> layer = Recurrent(ElmanCell(3, 8), batch_first=True)
        >>> x = torch.randn(4, 10, 3)                      # (N, T, F)
        >>> output, h_n = layer(x, lengths=[10, 7, 3, 1])
        >>> output.shape, h_n.shape
        (torch.Size([4, 10, 8]), torch.Size([1, 4, 8]))
        >>> bool(output[3, 1:].abs().sum() == 0)           # padded steps give zeros
        True
    """

    num_states = 1

    def __init__(self, cell: RecurrentCell, *, batch_first: bool = False) -> None:
        super().__init__()
        self.cell = cell
        self.batch_first = batch_first
        self.input_size = cell.input_size
        self.output_size = cell.output_size

    def forward_padded(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        return self._run(x, lengths, state, reverse=False)

    def forward_padded_reversed(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        # Native: walk the steps backwards instead of flipping copies of input and output.
        return self._run(x, lengths, state, reverse=True)

    def _run(
        self, x: Tensor, lengths: Lengths | None, state: State | None, reverse: bool
    ) -> tuple[Tensor, State]:
        if state is None:
            cell_state = self.cell.initial_state(x.shape[1], like=x)
        else:
            cell_state = map_state(lambda s: s[0], state)  # (1, N, H) -> (N, H)
        output, final = self._recur(x, lengths, cell_state, reverse)
        return output, map_state(lambda s: s.unsqueeze(0), final)  # (N, H) -> (1, N, H)

    def _recur(
        self, x: Tensor, lengths: Lengths | None, cell_state: State, reverse: bool
    ) -> tuple[Tensor, State]:
        """The recurrence itself on cell-shaped states; subclasses may run it another way."""
        return scan(self.cell, x, cell_state, lengths, reverse=reverse)
