"""Stack layers: each layer's output is the next one's input, dropout in between."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from seqmodels.cells.base import RecurrentCell
from seqmodels.core.errors import check_positive_int
from seqmodels.core.padding import Lengths
from seqmodels.core.state import State, cat_states, split_state
from seqmodels.layers.base import SequenceLayer
from seqmodels.layers.bidirectional import Bidirectional, as_layer
from seqmodels.layers.recurrent import Recurrent


def check_dropout(dropout: float) -> float:
    if (
        isinstance(dropout, bool)
        or not isinstance(dropout, numbers.Number)
        or not 0 <= dropout <= 1
    ):
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an "
            f"element being zeroed (dropout must be a number in [0, 1], got {dropout!r})"
        )
    return float(dropout)


class LayerList(nn.ModuleList):
    """``nn.ModuleList`` under seqmodels' own name: a pickled model names only seqmodels'
    classes for its recurrent layers, so ``torch.load(path, weights_only=True)`` loads it
    with seqmodels' classes allowlisted, as ``nn.LSTM`` loads with its class alone."""


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
        layers = [as_layer(layer) for layer in layers]
        for i in range(len(layers) - 1):
            if layers[i].output_size != layers[i + 1].input_size:
                raise ValueError(
                    f"layer {i} outputs {layers[i].output_size} features but layer {i + 1} "
                    f"expects input_size {layers[i + 1].input_size}"
                )
        self.layers = LayerList(layers)
        self.dropout = check_dropout(dropout)
        self.batch_first = batch_first
        self.input_size = layers[0].input_size
        self.output_size = layers[-1].output_size
        self.num_states = sum(layer.num_states for layer in layers)
        self.direction_sizes = layers[-1].direction_sizes
        offset = self.num_states - layers[-1].num_states
        self.top_slots = tuple(offset + i for i in layers[-1].top_slots)

    def sublayers(self) -> list[SequenceLayer]:
        return list(self.layers)

    def initial_state(self, batch_size: int, like: Tensor) -> State:
        return cat_states([layer.initial_state(batch_size, like) for layer in self.layers])

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
        **recurrent_options: Any,
    ) -> Stacked:
        """Build ``num_layers`` layers from ``make_cell(layer_input_size)`` (nn.RNN's shape).

        ``recurrent_options`` go to every :class:`Recurrent` built around a cell (each
        direction of each layer): ``backend``, ``weight_dropout``, ``recurrent_dropout``,
        ``zoneout``. A layer that ``make_cell`` returns is taken as it is."""
        check_positive_int("num_layers", num_layers)
        layers: list[SequenceLayer] = []
        size = input_size

        def wrap(cell: RecurrentCell | SequenceLayer) -> SequenceLayer:
            return Recurrent(cell, **recurrent_options) if isinstance(cell, RecurrentCell) else cell

        for _ in range(num_layers):
            if bidirectional:
                layer = Bidirectional(wrap(make_cell(size)), wrap(make_cell(size)))
            else:
                layer = wrap(make_cell(size))
            layers.append(layer)
            size = layer.output_size
        return cls(layers, dropout, batch_first=batch_first)

    def forward_padded(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        """Each layer's output is the next one's input; dropout on every input but the first.

        So dropout sits between layers and never after the last, as in ``nn.RNN``; padded
        steps stay zero through it.
        """
        finals = []
        states = split_state(state, [layer.num_states for layer in self.layers])
        for i, (layer, layer_state) in enumerate(zip(self.layers, states, strict=True)):
            if i > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, p=self.dropout, training=True)
            x, final = layer.forward_padded(x, lengths, layer_state)
            finals.append(final)
        return x, cat_states(finals)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}" if self.dropout else ""
