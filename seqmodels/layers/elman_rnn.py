"""``ElmanRNN``: a drop-in replacement for ``torch.nn.RNN``, composed of seqmodels' layers."""

from __future__ import annotations

import torch
from torch import nn

from seqmodels.cells.elman import ElmanCell, check_nonlinearity
from seqmodels.cells.init import check_init
from seqmodels.layers.dropin import DEFAULT_BACKEND, DropInRNN


class ElmanRNN(DropInRNN):
    r"""Multi-layer Elman RNN with ``torch.nn.RNN``'s constructor, parameters and forward.

    For each layer, each step, each direction:

    .. math::
        h_t = \mathrm{act}(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    where ``x_t`` is the input for the first layer and the previous layer's output (with
    dropout, when training and ``dropout > 0``) for the others.

    Args (as ``nn.RNN``): ``input_size``, ``hidden_size``, ``num_layers=1``,
    ``nonlinearity="tanh"|"relu"``, ``bias=True``, ``batch_first=False``, ``dropout=0.0``,
    ``bidirectional=False``, ``device``, ``dtype``. Keyword-only extras:

    * ``backend``: ``"auto"`` (the default) picks the fastest correct path per call
      (:mod:`seqmodels.layers.backends`: torch's kernel on CUDA, the hand-written BPTT on
      the CPU); ``"bptt"`` runs the hand-written back-propagation through time
      (:class:`~seqmodels.kernels.ElmanBPTT`), faster than ``nn.RNN`` on CPU;
      ``"autograd"`` runs the generic layer machinery (:func:`scan` over an Elman step,
      differentiated by autograd); ``"torch"`` runs torch's own fused kernel
      (``torch._VF.rnn_tanh``; cuDNN on CUDA) over these parameters. All support autocast;
      ``bptt`` and ``autograd`` also double backward and ``torch.func`` transforms on every
      device. Same parameters, same results; it can be changed at any time
      (``rnn.backend = "autograd"``), and ``rnn.resolved_backend(x)`` tells which path a
      call on ``x`` takes.
    * ``init``: ``"default"`` (nn.RNN's U(-1/sqrt(H), 1/sqrt(H))), ``"xavier"``,
      ``"kaiming"``, ``"orthogonal"`` or ``"identity"`` (IRNN), see :mod:`seqmodels.cells.init`.
    * ``weight_dropout``, ``recurrent_dropout``, ``zoneout`` (probabilities in [0, 1),
      default 0): weight drop on each ``W_hh``, variational dropout on the ``h_{t-1}`` the
      recurrent projection reads, zoneout on ``h``, given to every layer and direction
      (:class:`Recurrent`; ``docs/cells-and-layers.md``). ``backend="torch"`` runs weight
      drop only; ``"auto"`` leaves torch's kernel when one of the other two acts.

    It is a thin composition of the public layers: a :class:`Stacked` of
    :class:`Recurrent` (or :class:`Bidirectional` pairs of them) over :class:`ElmanCell`\ s.
    Parameters are named exactly as in ``nn.RNN`` (``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``, ``..._l1`` ...), so ``load_state_dict``
    works both ways (the cells own them; ``named_parameters``, ``state_dict``,
    ``load_state_dict`` and attribute access translate the names); see also
    :meth:`from_torch` and :meth:`to_torch`. Errors match ``nn.RNN``'s exception types
    (``docs/elman_rnn_contract.md``).

    Forward: ``rnn(input, h_0=None, *, lengths=None) -> (output, h_n)`` with ``input``
    ``(L, N, H_in)``, batch-first ``(N, L, H_in)``, unbatched ``(L, H_in)`` or a
    ``PackedSequence``; ``h_0`` ``(D * num_layers, N, H_out)`` (unbatched
    ``(D * num_layers, H_out)``); ``output`` ``(L, N, D * H_out)`` (or packed) and ``h_n``
    like ``h_0``. ``lengths`` (an extension) marks padding in a padded batch: the result
    equals running the same batch packed, except that padded outputs are zeros in place.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanRNN
        >>> rnn = ElmanRNN(10, 20, num_layers=2, bidirectional=True, backend="bptt")
        >>> output, h_n = rnn(torch.randn(5, 3, 10))
        >>> output.shape, h_n.shape
        (torch.Size([5, 3, 40]), torch.Size([4, 3, 20]))
        >>> reference = torch.nn.RNN(10, 20, num_layers=2, bidirectional=True)
        >>> _ = reference.load_state_dict(rnn.state_dict())   # same names and shapes
    """

    torch_class = nn.RNN
    cell_type = ElmanCell
    extra_arguments = {"nonlinearity": "tanh"}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
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
        if proj_size is not None:  # nn.RNN refuses the keyword itself, first
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        check_nonlinearity(nonlinearity)
        check_init(init)

        shared = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        cell_kwargs = {"nonlinearity": nonlinearity, "init": init, "device": device, "dtype": dtype}
        regularisers = {
            "weight_dropout": weight_dropout,
            "recurrent_dropout": recurrent_dropout,
            "zoneout": zoneout,
        }
        super().__init__(ElmanCell, cell_kwargs, *shared, backend=backend, **regularisers)
        self.nonlinearity = nonlinearity
        self.init = init

    def torch_mode(self) -> str:
        return "RNN_RELU" if self.cell(0).nonlinearity == "relu" else "RNN_TANH"
