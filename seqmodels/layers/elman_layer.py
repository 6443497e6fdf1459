"""One Elman layer in one direction, on either backend; the unit ElmanRNN is stacked from."""

from __future__ import annotations

import torch
from torch import Tensor

from seqmodels.bptt.elman import elman_bptt
from seqmodels.cells.elman import ElmanCell, elman_project
from seqmodels.layers.recurrent import Recurrent, scan
from seqmodels.layers.sequence import Lengths, reverse_padded

BACKENDS = ("autograd", "bptt")
#: ``bptt`` is at least as fast as ``autograd`` on every benchmark configuration (README).
DEFAULT_BACKEND = "bptt"


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    return backend


class _ElmanStep:
    """An Elman cell over borrowed parameter tensors (ElmanRNN owns them under nn.RNN's names).

    It follows the :class:`~seqmodels.RecurrentCell` protocol, so the autograd backend runs
    through exactly the same :func:`~seqmodels.layers.recurrent.scan` as a user's cell does.
    """

    def __init__(self, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity):
        self.weight_ih = weight_ih
        self.bias = None if bias_ih is None else bias_ih + bias_hh
        # Transposed once per forward, not once per step (saves a view op and its backward
        # node in every step), and made row-major: the step GEMM runs faster on it.
        self.weight_hh_t = weight_hh.t().contiguous()
        self.activation = torch.tanh if nonlinearity == "tanh" else torch.relu

    def project_input(self, x: Tensor) -> Tensor:
        return elman_project(x, self.weight_ih, self.bias)

    def forward_projected(self, p_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        h = self.activation(torch.addmm(p_t, h, self.weight_hh_t))  # (N, H)
        return h, h


def run_elman(
    weights: tuple[Tensor, Tensor, Tensor | None, Tensor | None],
    nonlinearity: str,
    backend: str,
    x: Tensor,
    lengths: Lengths | None,
    h0: Tensor,
    reverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Elman recurrence over time-major ``x`` ``(T, N, I)`` from ``h0`` ``(N, H)``.

    ``weights`` is ``(W_ih, W_hh, b_ih, b_hh)`` (biases may be ``None``). ``reverse`` walks
    time backwards, natively when there is no padding, by per-sequence reversal of input and
    output when there is; outputs stay aligned with ``x``. Returns ``(output (T, N, H),
    h_n (N, H))``.
    """
    if backend == "autograd":
        return scan(_ElmanStep(*weights, nonlinearity), x, h0, lengths, reverse=reverse)
    if lengths is None:
        return elman_bptt(x, h0, *weights, nonlinearity, None, reverse)
    if reverse:
        x = reverse_padded(x, lengths)
    output, h_n = elman_bptt(x, h0, *weights, nonlinearity, lengths.values)
    return (reverse_padded(output, lengths) if reverse else output), h_n


class ElmanLayer(Recurrent):
    """A :class:`Recurrent` Elman layer with a choice of backend, for generic compositions.

    ``Recurrent(ElmanCell(...))`` always runs on autograd; ``ElmanLayer`` owns the same
    ``cell`` (an :class:`~seqmodels.ElmanCell`, same parameter names) but can also run the
    hand-written BPTT, so stacks built with :class:`Bidirectional` and :class:`Stacked`
    get it too.

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
        backend: str = DEFAULT_BACKEND,
        init: str = "default",
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        cell = ElmanCell(
            input_size, hidden_size, bias, nonlinearity, init=init, device=device, dtype=dtype
        )
        super().__init__(cell, batch_first=batch_first)
        self.backend = check_backend(backend)

    def _recur(
        self, x: Tensor, lengths: Lengths | None, cell_state: Tensor, reverse: bool
    ) -> tuple[Tensor, Tensor]:
        cell = self.cell
        weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        return run_elman(weights, cell.nonlinearity, self.backend, x, lengths, cell_state, reverse)

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}"
