"""Stack layers: each layer's output is the next one's input, dropout in between."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from seqmodels.cells.base import RecurrentCell, State
from seqmodels.layers.base import SequenceLayer
from seqmodels.layers.bidirectional import Bidirectional, LayerFn, _as_layer
from seqmodels.layers.sequence import Lengths, cat_states, split_state


def check_dropout(dropout: float) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
        raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
    return float(dropout)


def run_stacked(
    layer_fns: Sequence[LayerFn],
    slots: Sequence[int],
    dropout: float,
    training: bool,
    x: Tensor,
    lengths: Lengths | None,
    state: State | None,
) -> tuple[Tensor, State]:
    """The stacked composition, shared by :class:`Stacked` and ``ElmanRNN``.

    Dropout is applied to the input of every layer but the first (so between layers and
    never after the last, as in ``nn.RNN``). Padded steps stay zero through dropout.
    """
    finals = []
    for i, (layer_fn, layer_state) in enumerate(
        zip(layer_fns, split_state(state, slots), strict=True)
    ):
        if i > 0 and dropout > 0 and training:
            x = F.dropout(x, p=dropout, training=True)
        x, final = layer_fn(x, lengths, layer_state)
        finals.append(final)
    return x, cat_states(finals)


class Stacked(SequenceLayer):
    """A deep recurrent network from any layers (or cells).

    Layer i's ``output_size`` must equal layer i+1's ``input_size``. The state concatenates
    the layers' states in order (nn.RNN's ``h_n`` layout, ``(sum of slots, N, H)``), so all
    layers' states must have the same size.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanCell, Stacked
        >>> net = Stacked.from_cell(lambda i: ElmanCell(i, 16), input_size=4,
        ...                         num_layers=3, bidirectional=True, dropout=0.1)
        >>> output, h_n = net(torch.randn(9, 2, 4))
        >>> output.shape, h_n.shape
        (torch.Size([9, 2, 32]), torch.Size([6, 2, 16]))
    """

    def __init__(
        self,
        layers: Sequence[SequenceLayer | RecurrentCell],
        dropout: float = 0.0,
        *,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) == 0:
            raise ValueError("Stacked needs at least one layer, got an empty list")
        layers = [_as_layer(layer) for layer in layers]
        for i in range(len(layers) - 1):
            if layers[i].output_size != layers[i + 1].input_size:
                raise ValueError(
                    f"layer {i} outputs {layers[i].output_size} features but layer {i + 1} "
                    f"expects input_size {layers[i + 1].input_size}"
                )
        self.layers = nn.ModuleList(layers)
        self.dropout = check_dropout(dropout)
        self.batch_first = batch_first
        self.input_size = layers[0].input_size
        self.output_size = layers[-1].output_size
        self.num_states = sum(layer.num_states for layer in layers)

    @classmethod
    def from_cell(
        cls,
        make_cell: Callable[[int], RecurrentCell],
        input_size: int,
        num_layers: int,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = False,
    ) -> Stacked:
        """Build ``num_layers`` layers from ``make_cell(layer_input_size)`` (nn.RNN's shape)."""
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        layers: list[SequenceLayer] = []
        size = input_size
        for _ in range(num_layers):
            if bidirectional:
                layer = Bidirectional(make_cell(size), make_cell(size))
            else:
                layer = _as_layer(make_cell(size))
            layers.append(layer)
            size = layer.output_size
        return cls(layers, dropout, batch_first=batch_first)

    def forward_padded(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        return run_stacked(
            [layer.forward_padded for layer in self.layers],
            [layer.num_states for layer in self.layers],
            self.dropout,
            self.training,
            x,
            lengths,
            state,
        )

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}" if self.dropout else ""
