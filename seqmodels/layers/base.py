"""The public face shared by every layer: one ``forward`` for all input formats."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from seqmodels.core.padding import Lengths, reverse_padded
from seqmodels.core.state import State
from seqmodels.layers.backends import BACKENDS, check_backend
from seqmodels.layers.formats import check_state, prepare_input, restore_output, restore_state

__all__ = ["BACKENDS", "SequenceLayer", "check_backend"]


class SequenceLayer(nn.Module):
    """A module that runs over time. Subclasses implement :meth:`forward_padded`.

    Attributes every layer sets: ``input_size``, ``output_size`` (features per step in and
    out), ``num_states`` (state slots, see :mod:`seqmodels.core.state`) and
    ``batch_first``. What a task needs to read a layer's output without inspecting it:

    * ``direction_sizes``: widths of the top layer's output parts, in concatenation order
      (``(H,)`` one direction, ``(H_f, H_b)`` bidirectional);
    * ``top_slots``: indices on the final state's slot axis that belong to the top layer,
      in the same order.

    ``forward(input, state=None, lengths=None) -> (output, final_state)`` accepts

    * ``(T, N, F)``, or ``(N, T, F)`` when ``batch_first``, or unbatched ``(T, F)``;
    * optional ``lengths`` ``(N,)``: steps at or beyond a sequence's length are padding.
      They never change that sequence's state (nor any value or gradient, even when they
      hold NaN), their outputs are zero, and the final state is the state after the
      sequence's own last real step;
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
            expected = self.initial_state(prep.batch_size, like=prep.x)
            state = check_state(state, expected, prep.unbatched)
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

    def initial_state(self, batch_size: int, like: Tensor) -> State:
        """The state ``(num_states, N, H)`` the layer starts from when given none."""
        raise NotImplementedError

    def sublayers(self) -> list[SequenceLayer]:
        """The layers this one composes (empty for a layer over a cell)."""
        return []

    @property
    def backend(self) -> str:
        """The ``backend`` of every layer inside (:mod:`seqmodels.layers.backends`); ``"mixed"``
        if they differ."""
        backends = {layer.backend for layer in self.sublayers()}
        return backends.pop() if len(backends) == 1 else "mixed"

    @backend.setter
    def backend(self, value: str) -> None:
        check_backend(value)
        for layer in self.sublayers():
            layer.backend = value
