"""The linear maps every built-in cell shares: its parameters, the input projection, W_hh^T.

A built-in cell with ``G`` gates owns ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)`` and
optionally ``bias_ih``, ``bias_hh (G*H,)``, named and laid out as in ``torch.nn.RNNCell``
(G = 1), ``torch.nn.GRUCell`` (G = 3: r, z, n) and ``torch.nn.LSTMCell`` (G = 4: i, f, g, o),
so weights copy both ways.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def register_rnn_parameters(
    module: nn.Module,
    input_size: int,
    hidden_size: int,
    gates: int,
    bias: bool,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
    *,
    diagonal: bool = False,
    recurrent_size: int | None = None,
) -> None:
    """Register ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` (uninitialised);
    ``weight_hh`` is a vector ``(H,)`` when ``diagonal`` (an elementwise recurrence), else
    ``(G*H, R)`` with ``R = recurrent_size``, the width of the ``h`` fed back (``H`` unless
    given: an LSTM with projections feeds back ``h`` of width ``proj_size``)."""
    factory = {"device": device, "dtype": dtype}
    rows = gates * hidden_size
    module.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
    columns = hidden_size if recurrent_size is None else recurrent_size
    hh_shape = (hidden_size,) if diagonal else (rows, columns)
    module.weight_hh = nn.Parameter(torch.empty(*hh_shape, **factory))
    if bias:
        module.bias_ih = nn.Parameter(torch.empty(rows, **factory))
        module.bias_hh = nn.Parameter(torch.empty(rows, **factory))
    else:
        module.register_parameter("bias_ih", None)
        module.register_parameter("bias_hh", None)


def project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ W^T + bias`` over every leading axis: ``(..., I) -> (..., R)``, one GEMM."""
    x2d = x.reshape(-1, x.shape[-1])  # (T*N, I)
    if bias is None:
        out = torch.mm(x2d, weight.t())
    else:
        out = torch.addmm(bias, x2d, weight.t())
    return out.view(*x.shape[:-1], weight.shape[0])


class _RowMajorTranspose(torch.autograd.Function):
    """``W.t().contiguous()`` whose gradient comes back contiguous, in ``W``'s own layout.

    Plain autograd would hand ``W`` the transpose of a contiguous gradient (a non-contiguous
    view), which ``torch.autograd.grad`` returns as is; torch's RNN gradients are contiguous.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(weight: Tensor) -> Tensor:
        return weight.t().contiguous()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        pass

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.t().contiguous()


def row_major_t(weight: Tensor) -> Tensor:
    """``W^T`` as a row-major copy, made once per sequence: the step GEMM runs faster on it,
    and every step saves a view op and its backward node."""
    return _RowMajorTranspose.apply(weight)
