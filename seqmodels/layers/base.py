"""The public face shared by every layer: one ``forward`` for all input formats."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from seqmodels.cells.base import State
from seqmodels.layers.sequence import (
    Lengths,
    check_state,
    prepare_input,
    restore_output,
    restore_state,
    reverse_padded,
)


class SequenceLayer(nn.Module):
    """A module that runs over time. Subclasses implement :meth:`forward_padded`.

    Attributes every layer sets: ``input_size``, ``output_size`` (features per step in and
    out), ``num_states`` (state slots, see :mod:`seqmodels.layers.sequence`) and
    ``batch_first``.

    ``forward(input, state=None, lengths=None) -> (output, final_state)`` accepts

    * ``(T, N, F)``, or ``(N, T, F)`` when ``batch_first``, or unbatched ``(T, F)``;
    * optional ``lengths`` ``(N,)``: steps at or beyond a sequence's length are padding.
      They never change that sequence's state, their outputs are zero, and the final state
      is the state after the sequence's own last real step;
    * or a ``PackedSequence`` (then ``output`` is a ``PackedSequence`` with the same layout).

    ``state`` is ``(num_states, N, H)`` (or a tuple of those for tuple-state cells);
    ``None`` means each cell's ``initial_state``.
    """

    input_size: int
    output_size: int
    num_states: int
    batch_first: bool

    def forward(
        self,
        input: Tensor | PackedSequence,
        state: State | None = None,
        lengths: Sequence[int] | Tensor | None = None,
    ) -> tuple[Tensor | PackedSequence, State]:
        prep = prepare_input(input, lengths, self.batch_first, self.input_size)
        if state is not None:
            state = check_state(state, self.num_states, prep.batch_size, prep.unbatched)
        output, final = self.forward_padded(prep.x, prep.lengths, state)
        return restore_output(output, prep), restore_state(final, prep)

    def forward_padded(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        """Time-major core: ``x`` ``(T, N, F)`` -> output ``(T, N, output_size)``, final state."""
        raise NotImplementedError

    def forward_padded_reversed(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        """The same layer run backwards in time, from each sequence's last real step.

        Outputs stay aligned with ``x``'s time axis. This default reverses copies of the input
        and output; layers that can walk time backwards natively override it.
        """
        output, final = self.forward_padded(reverse_padded(x, lengths), lengths, state)
        return reverse_padded(output, lengths), final
