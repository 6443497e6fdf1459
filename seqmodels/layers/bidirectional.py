"""Run two layers over a sequence in opposite directions and concatenate their outputs."""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from seqmodels.cells.base import RecurrentCell
from seqmodels.core.padding import Lengths
from seqmodels.core.state import State, cat_states, split_state
from seqmodels.layers.base import SequenceLayer
from seqmodels.layers.recurrent import Recurrent


def as_layer(layer: SequenceLayer | RecurrentCell) -> SequenceLayer:
    """A layer as it is; a cell wrapped in :class:`Recurrent`."""
    return Recurrent(layer) if isinstance(layer, RecurrentCell) else layer


class Bidirectional(SequenceLayer):
    """Bidirectional wrapper for any layer (or cell): forward and backward outputs concatenated.

    ``Bidirectional(forward, backward=None)``: with no ``backward`` a deep copy of
    ``forward`` is used, re-initialised (every submodule's ``reset_parameters``) so the two
    directions do not start from the same weights. A cell is wrapped in :class:`Recurrent`.

    Output ``(T, N, forward.output_size + backward.output_size)``; the state has the forward
    layer's slots first, then the backward layer's (nn.RNN's order: ``h_n[0]`` forward,
    ``h_n[1]`` backward).

    Example::

        >>> import torch
        >>> from seqmodels import Bidirectional, ElmanCell
        >>> layer = Bidirectional(ElmanCell(3, 8))
        >>> output, h_n = layer(torch.randn(5, 2, 3))
        >>> output.shape, h_n.shape
        (torch.Size([5, 2, 16]), torch.Size([2, 2, 8]))
    """

    def __init__(
        self,
        forward: SequenceLayer | RecurrentCell,
        backward: SequenceLayer | RecurrentCell | None = None,
        *,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        forward_layer = as_layer(forward)
        if backward is None:
            backward_layer = copy.deepcopy(forward_layer)
            for module in backward_layer.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        else:
            backward_layer = as_layer(backward)
        if forward_layer.input_size != backward_layer.input_size:
            raise ValueError(
                "both directions must take the same input size, got "
                f"{forward_layer.input_size} (forward) and {backward_layer.input_size} (backward)"
            )
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer
        self.batch_first = batch_first
        self.input_size = forward_layer.input_size
        self.output_size = forward_layer.output_size + backward_layer.output_size
        self.num_states = forward_layer.num_states + backward_layer.num_states
        self.direction_sizes = forward_layer.direction_sizes + backward_layer.direction_sizes
        offset = forward_layer.num_states
        self.top_slots = forward_layer.top_slots + tuple(
            offset + i for i in backward_layer.top_slots
        )

    def sublayers(self) -> list[SequenceLayer]:
        return [self.forward_layer, self.backward_layer]

    def initial_state(self, batch_size: int, like: Tensor) -> State:
        return cat_states([layer.initial_state(batch_size, like) for layer in self.sublayers()])

    def forward_padded(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        """``output[t] = cat([forward[t], backward[t]], -1)``: both directions' view of step t.

        The backward layer walks each sequence from its own last real step to its first and
        returns outputs aligned with ``x``'s time axis
        (:meth:`SequenceLayer.forward_padded_reversed`).
        """
        slots = [self.forward_layer.num_states, self.backward_layer.num_states]
        state_f, state_b = split_state(state, slots)
        out_f, final_f = self.forward_layer.forward_padded(x, lengths, state_f)  # (T, N, H_f)
        out_b, final_b = self.backward_layer.forward_padded_reversed(x, lengths, state_b)
        return torch.cat([out_f, out_b], dim=-1), cat_states([final_f, final_b])
