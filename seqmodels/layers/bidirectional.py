"""Run two layers over a sequence in opposite directions and concatenate their outputs."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor

from seqmodels.cells.base import RecurrentCell, State
from seqmodels.layers.base import SequenceLayer
from seqmodels.layers.recurrent import Recurrent
from seqmodels.layers.sequence import Lengths, cat_states, split_state

#: The time-major core of a layer: ``(x, lengths, state) -> (output, final_state)``.
LayerFn = Callable[[Tensor, "Lengths | None", "State | None"], tuple[Tensor, State]]


def run_bidirectional(
    forward_fn: LayerFn,
    reversed_fn: LayerFn,
    slots: tuple[int, int],
    x: Tensor,
    lengths: Lengths | None,
    state: State | None,
) -> tuple[Tensor, State]:
    """The bidirectional composition, shared by :class:`Bidirectional` and ``ElmanRNN``.

    ``reversed_fn`` runs the backward direction: it walks each sequence from its own last
    real step to its first and returns outputs aligned with ``x``'s time axis (see
    :meth:`SequenceLayer.forward_padded_reversed`), so ``output[t]`` holds both directions'
    view of step t: ``output = cat([forward[t], backward[t]], -1)``.
    """
    state_f, state_b = split_state(state, slots)
    out_f, final_f = forward_fn(x, lengths, state_f)  # (T, N, H_f)
    out_b, final_b = reversed_fn(x, lengths, state_b)  # (T, N, H_b)
    output = torch.cat([out_f, out_b], dim=-1)
    return output, cat_states([final_f, final_b])


def _as_layer(layer: SequenceLayer | RecurrentCell) -> SequenceLayer:
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
        forward_layer = _as_layer(forward)
        if backward is None:
            backward_layer = copy.deepcopy(forward_layer)
            for module in backward_layer.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        else:
            backward_layer = _as_layer(backward)
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

    def forward_padded(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        slots = (self.forward_layer.num_states, self.backward_layer.num_states)
        return run_bidirectional(
            self.forward_layer.forward_padded,
            self.backward_layer.forward_padded_reversed,
            slots,
            x,
            lengths,
            state,
        )
