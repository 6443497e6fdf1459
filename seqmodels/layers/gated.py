"""``LSTM`` and ``GRU``: drop-in replacements for ``torch.nn.LSTM`` / ``torch.nn.GRU``.

Like :class:`~seqmodels.ElmanRNN`, each is a thin composition of the public layers over its
cell (:class:`~seqmodels.LSTMCell`, :class:`~seqmodels.GRUCell`) with torch's constructor,
parameter names, shapes, initialisation, return values, errors and
``from_torch``/``to_torch``. ``backend="bptt"`` runs the hand-written back-propagation
through time of :mod:`seqmodels.kernels.gated`, ``"autograd"`` the step loop, ``"torch"``
torch's own fused kernel over the same parameters, and ``"auto"`` (the default) the fastest
correct one per call (:mod:`seqmodels.layers.backends`).

``LSTM(proj_size=P)`` (LSTM with projections, as ``nn.LSTM``) runs
:class:`~seqmodels.LSTMPCell`: ``bptt`` is the BPTT engine with the step's
derivative derived (the LSTM's fast forms are for :class:`~seqmodels.LSTMCell` only), and
``torch`` passes each layer's ``weight_hr`` to torch's kernel in ``nn.LSTM``'s flat order.

Both take keyword-only ``weight_dropout``, ``recurrent_dropout`` and ``zoneout``
(:class:`~seqmodels.ElmanRNN` documents them; ``weight_dropout`` with ``recurrent_dropout``
is AWD-LSTM's recurrent regularisation).
"""

from __future__ import annotations

import torch
from torch import nn

from seqmodels.cells.base import RecurrentCell
from seqmodels.cells.gated import GRUCell, LSTMCell, LSTMPCell
from seqmodels.layers.dropin import DEFAULT_BACKEND, DropInRNN


class LSTM(DropInRNN):
    r"""Multi-layer LSTM with ``torch.nn.LSTM``'s constructor, parameters and forward.

    Forward: ``lstm(input, (h_0, c_0)=None, *, lengths=None) -> (output, (h_n, c_n))``;
    shapes as ``nn.LSTM``, plus padded batches with ``lengths`` as in
    :class:`~seqmodels.SequenceLayer`. The maths of each step are in
    :mod:`seqmodels.cells.gated`.

    With ``proj_size = P > 0`` (LSTM with projections, Sak et al. 2014) each layer's ``h`` is
    projected to ``P`` features before it is output and fed back:

    .. math::
        \begin{aligned}
        (i, f, g, o) &= (\sigma, \sigma, \tanh, \sigma)(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1}
            + b_{hh})\\
        c_t &= f \odot c_{t-1} + i \odot g, \qquad h_t = W_{hr} (o \odot \tanh(c_t))
        \end{aligned}

    Shapes, with :math:`D = 2` if bidirectional else 1, :math:`H_{cell}` = ``hidden_size`` and
    :math:`H_{out}` = ``proj_size`` if ``proj_size > 0`` else ``hidden_size``:

    * ``input`` ``(T, N, I)`` (``(N, T, I)`` when ``batch_first``, ``(T, I)`` unbatched);
    * ``h_0``, ``h_n`` ``(D * num_layers, N, H_out)``; ``c_0``, ``c_n``
      ``(D * num_layers, N, H_cell)``; ``output`` ``(T, N, D * H_out)``;
    * ``weight_ih_l{k}`` ``(4 H_cell, I)`` for ``k = 0``, ``(4 H_cell, D * H_out)`` for
      ``k > 0``; ``weight_hh_l{k}`` ``(4 H_cell, H_out)``; ``bias_ih_l{k}``, ``bias_hh_l{k}``
      ``(4 H_cell,)``; with projections ``weight_hr_l{k}`` ``(P, H_cell)``, after the biases
      (``_reverse`` for the backward direction), as ``nn.LSTM`` names, orders and
      initialises them.

    Example::

        >>> import torch
        >>> from seqmodels import LSTM
        >>> lstm = LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True)
        >>> output, (h_n, c_n) = lstm(torch.randn(3, 7, 10))
        >>> output.shape, h_n.shape, c_n.shape
        (torch.Size([3, 7, 40]), torch.Size([4, 3, 20]), torch.Size([4, 3, 20]))
        >>> reference = torch.nn.LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True)
        >>> _ = reference.load_state_dict(lstm.state_dict())   # same names and shapes
        >>> projected = LSTM(10, 20, proj_size=5)
        >>> output, (h_n, c_n) = projected(torch.randn(7, 3, 10))
        >>> output.shape, h_n.shape, c_n.shape, projected.weight_hr_l0.shape
        (torch.Size([7, 3, 5]), torch.Size([1, 3, 5]), torch.Size([1, 3, 20]), torch.Size([5, 20]))
    """

    torch_class = nn.LSTM
    extra_arguments = {"proj_size": 0}

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
        weight_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        shared = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        cell_kwargs = {"init": init, "device": device, "dtype": dtype}
        regularisers = {
            "weight_dropout": weight_dropout,
            "recurrent_dropout": recurrent_dropout,
            "zoneout": zoneout,
        }
        # nn.LSTM projects when proj_size != 0; the checks of its value come first, in the
        # base class, and a projected cell refuses a non-integer size (torch: TypeError).
        cell: type[RecurrentCell] = LSTMCell
        if proj_size != 0:
            cell, cell_kwargs["proj_size"] = LSTMPCell, proj_size
        super().__init__(
            cell, cell_kwargs, *shared, backend=backend, proj_size=proj_size, **regularisers
        )
        self.init = init

    @property
    def cell_type(self) -> type[RecurrentCell]:
        """The cell whose recurrence torch's ``LSTM`` kernel computes for this module."""
        return LSTMPCell if self.proj_size else LSTMCell


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
        weight_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        if proj_size is not None:  # nn.GRU refuses the keyword itself, first
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")

        shared = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        cell_kwargs = {"init": init, "device": device, "dtype": dtype}
        super().__init__(
            GRUCell,
            cell_kwargs,
            *shared,
            backend=backend,
            weight_dropout=weight_dropout,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )
        self.init = init
