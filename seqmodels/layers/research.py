"""Modules over the research cells torch lacks: LayerNorm LSTM/GRU and IndRNN.

Each is a :class:`Stacked` of :class:`Recurrent` layers (or :class:`Bidirectional` pairs of
them) over one cell per layer and direction, with the drop-ins' constructor
(``input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional``, then
keyword-only ``backend``, ``device``, ``dtype``) plus the cell's own options, and the
drop-ins' forward: ``module(input, h_0=None, *, lengths=None) -> (output, h_n)`` (an LSTM's
state is ``(h_n, c_n)``), on padded batches, batch-first, unbatched or packed input.

``backend``: ``"auto"`` (the default), ``"bptt"`` (the engine) or ``"autograd"`` (the step
loop); torch has no kernel for these cells, so there is no ``"torch"``. The regularisers
``weight_dropout``, ``recurrent_dropout`` and ``zoneout`` are :class:`Recurrent`'s, given to
every layer and direction. Parameters are the
cells' own, under ``layers.{k}.cell.*`` (``layers.{k}.forward_layer.cell.*`` and
``backward_layer`` when bidirectional).
"""

from __future__ import annotations

import torch

from seqmodels.cells.base import ProjectedCell
from seqmodels.cells.indrnn import IndRNNCell
from seqmodels.cells.layernorm import LayerNormGRUCell, LayerNormLSTMCell
from seqmodels.core.errors import check_bool, check_positive_int
from seqmodels.layers.bidirectional import Bidirectional
from seqmodels.layers.recurrent import Recurrent
from seqmodels.layers.stacked import Stacked, check_dropout


class ResearchRNN(Stacked):
    """Base of the research modules: ``cell_class`` over layers and directions."""

    cell_class: type[ProjectedCell]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        backend: str = "auto",
        weight_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **cell_options: object,
    ) -> None:
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_bool("bias", bias)
        check_bool("batch_first", batch_first)
        check_bool("bidirectional", bidirectional)
        dropout = check_dropout(dropout)
        regularisers = {
            "weight_dropout": weight_dropout,
            "recurrent_dropout": recurrent_dropout,
            "zoneout": zoneout,
        }

        def layer(size: int) -> Recurrent:
            cell = self.cell_class(
                size, hidden_size, bias, device=device, dtype=dtype, **cell_options
            )
            return Recurrent(cell, backend=backend, **regularisers)

        layers = []
        size = input_size
        for _ in range(num_layers):
            layers.append(Bidirectional(layer(size), layer(size)) if bidirectional else layer(size))
            size = layers[-1].output_size
        super().__init__(layers, dropout, batch_first=batch_first)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.bidirectional = bidirectional
        self.cell_options = dict(cell_options)
        self.regularisers = regularisers

    def cells(self) -> list[ProjectedCell]:
        """Every cell, layer by layer, the forward direction first."""
        return [m for m in self.modules() if isinstance(m, ProjectedCell)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + "".join(f", {k}={v}" for k, v in self.regularisers.items() if v)


class LayerNormLSTM(ResearchRNN):
    """Multi-layer layer-normalised LSTM (:class:`~seqmodels.LayerNormLSTMCell`).

    Forward: ``lnlstm(input, (h_0, c_0)=None, *, lengths=None) -> (output, (h_n, c_n))``,
    shapes as ``nn.LSTM``'s: ``output`` ``(T, N, D * H)``, ``h_n`` and ``c_n``
    ``(D * num_layers, N, H)``.

    Example::

        >>> import torch
        >>> from seqmodels import LayerNormLSTM
        >>> lstm = LayerNormLSTM(10, 20, num_layers=2, bidirectional=True)
        >>> output, (h_n, c_n) = lstm(torch.randn(7, 3, 10), lengths=[7, 5, 2])
        >>> output.shape, h_n.shape, c_n.shape
        (torch.Size([7, 3, 40]), torch.Size([4, 3, 20]), torch.Size([4, 3, 20]))
    """

    cell_class = LayerNormLSTMCell


class LayerNormGRU(ResearchRNN):
    """Multi-layer layer-normalised GRU (:class:`~seqmodels.LayerNormGRUCell`).

    Forward: ``lngru(input, h_0=None, *, lengths=None) -> (output, h_n)``, shapes as
    ``nn.GRU``'s.

    Example::

        >>> import torch
        >>> from seqmodels import LayerNormGRU
        >>> output, h_n = LayerNormGRU(10, 20, num_layers=2)(torch.randn(7, 3, 10))
        >>> output.shape, h_n.shape
        (torch.Size([7, 3, 20]), torch.Size([2, 3, 20]))
    """

    cell_class = LayerNormGRUCell


class IndRNN(ResearchRNN):
    """Multi-layer IndRNN (:class:`~seqmodels.IndRNNCell`, Li et al. 2018).

    Takes the cell's options ``nonlinearity="relu"`` (or ``"tanh"``), ``recurrent_max=1.0``
    and ``recurrent_min=0.0`` (``weight_hh`` ~ U(recurrent_min, recurrent_max)). Forward:
    ``indrnn(input, h_0=None, *, lengths=None) -> (output, h_n)``, shapes as ``nn.RNN``'s.

    Example::

        >>> import torch
        >>> from seqmodels import IndRNN
        >>> rnn = IndRNN(10, 20, num_layers=2)
        >>> output, h_n = rnn(torch.randn(7, 3, 10))
        >>> output.shape, h_n.shape
        (torch.Size([7, 3, 20]), torch.Size([2, 3, 20]))
    """

    cell_class = IndRNNCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "relu",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        recurrent_max: float = 1.0,
        recurrent_min: float = 0.0,
        backend: str = "auto",
        weight_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            backend=backend,
            weight_dropout=weight_dropout,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
            device=device,
            dtype=dtype,
            nonlinearity=nonlinearity,
            recurrent_max=recurrent_max,
            recurrent_min=recurrent_min,
        )
