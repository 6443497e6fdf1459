"""``LSTM`` and ``GRU``: drop-in replacements for ``torch.nn.LSTM`` / ``torch.nn.GRU``.

Like :class:`~seqmodels.ElmanRNN`, each is a thin composition of the public layers over its
cell (:class:`~seqmodels.LSTMCell`, :class:`~seqmodels.GRUCell`) with torch's constructor,
parameter names, shapes, initialisation, return values, errors and
``from_torch``/``to_torch``. ``backend="bptt"`` runs the hand-written back-propagation
through time of :mod:`seqmodels.kernels.gated`, ``"autograd"`` the step loop, ``"torch"``
torch's own fused kernel over the same parameters, and ``"auto"`` (the default) the fastest
correct one per call (:mod:`seqmodels.layers.backends`).

``proj_size`` (LSTM projections) is checked as torch checks it and then refused with a clear
``ValueError`` for any value > 0: a projection changes the recurrence (``h`` is projected
before it is fed back), which neither the cell nor the hand-written kernel implements.
"""

from __future__ import annotations

import torch
from torch import nn

from seqmodels.cells.gated import GRUCell, LSTMCell
from seqmodels.layers.dropin import DEFAULT_BACKEND, DropInRNN


class LSTM(DropInRNN):
    r"""Multi-layer LSTM with ``torch.nn.LSTM``'s constructor, parameters and forward.

    Forward: ``lstm(input, (h_0, c_0)=None, *, lengths=None) -> (output, (h_n, c_n))``;
    shapes as ``nn.LSTM`` (``h_0``, ``c_0``: ``(D * num_layers, N, H)``), plus padded batches
    with ``lengths`` as in :class:`~seqmodels.SequenceLayer`. The maths of each step are in
    :mod:`seqmodels.cells.gated`.

    Example::

        >>> import torch
        >>> from seqmodels import LSTM
        >>> lstm = LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True)
        >>> output, (h_n, c_n) = lstm(torch.randn(3, 7, 10))
        >>> output.shape, h_n.shape, c_n.shape
        (torch.Size([3, 7, 40]), torch.Size([4, 3, 20]), torch.Size([4, 3, 20]))
        >>> reference = torch.nn.LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True)
        >>> _ = reference.load_state_dict(lstm.state_dict())   # same names and shapes
    """

    torch_class = nn.LSTM
    cell_type = LSTMCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        backend: str = DEFAULT_BACKEND,
        init: str = "default",
    ) -> None:
        shared = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        cell_kwargs = {"init": init, "device": device, "dtype": dtype}
        super().__init__(LSTMCell, cell_kwargs, *shared, backend=backend, proj_size=proj_size)
        self.init = init


class GRU(DropInRNN):
    r"""Multi-layer GRU with ``torch.nn.GRU``'s constructor, parameters and forward.

    Forward: ``gru(input, h_0=None, *, lengths=None) -> (output, h_n)``, shapes as
    ``nn.GRU``. The maths of each step are in :mod:`seqmodels.cells.gated`.

    Example::

        >>> import torch
        >>> from seqmodels import GRU
        >>> gru = GRU(10, 20, num_layers=2)
        >>> output, h_n = gru(torch.randn(7, 3, 10))
        >>> output.shape, h_n.shape
        (torch.Size([7, 3, 20]), torch.Size([2, 3, 20]))
    """

    torch_class = nn.GRU
    cell_type = GRUCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        backend: str = DEFAULT_BACKEND,
        init: str = "default",
        proj_size: int | None = None,
    ) -> None:
        if proj_size is not None:  # nn.GRU refuses the keyword itself, first
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")

        shared = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        cell_kwargs = {"init": init, "device": device, "dtype": dtype}
        super().__init__(GRUCell, cell_kwargs, *shared, backend=backend)
        self.init = init
