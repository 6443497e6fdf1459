"""``ElmanLayer``: an :class:`ElmanCell` in a :class:`Recurrent` layer, BPTT by default."""

from __future__ import annotations

import torch

from seqmodels.cells.elman import ElmanCell
from seqmodels.layers.recurrent import Recurrent


class ElmanLayer(Recurrent):
    """``Recurrent(ElmanCell(...))`` under one name, for generic compositions.

    Nothing but a constructor: the cell is :class:`~seqmodels.ElmanCell` (same parameter
    names), the layer is :class:`~seqmodels.Recurrent`, and ``backend`` chooses between the
    step loop (``"autograd"``) and the cell's hand-written BPTT (``"bptt"``; ``"auto"``, the
    default, runs it too, and the step loop only where the BPTT cannot run, when exporting).

    Example::

        >>> import torch
        >>> from seqmodels import Bidirectional, ElmanLayer, Stacked
        >>> net = Stacked([Bidirectional(ElmanLayer(3, 8)), ElmanLayer(16, 8, nonlinearity="relu")])
        >>> output, h_n = net(torch.randn(5, 2, 3), lengths=[5, 2])
        >>> output.shape, h_n.shape
        (torch.Size([5, 2, 8]), torch.Size([3, 2, 8]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        backend: str = "auto",
        init: str = "default",
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        cell = ElmanCell(
            input_size, hidden_size, bias, nonlinearity, init=init, device=device, dtype=dtype
        )
        super().__init__(cell, backend=backend, batch_first=batch_first)
