"""The Elman cell: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

from __future__ import annotations

import torch
from torch import Tensor

from seqmodels.cells.base import ProjectedCell
from seqmodels.cells.init import check_init, init_elman_

NONLINEARITIES = ("tanh", "relu")


def check_nonlinearity(nonlinearity: str) -> str:
    if nonlinearity not in NONLINEARITIES:
        # torch.nn.RNN's wording first, so code matching on it keeps working.
        raise ValueError(
            f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'. "
            f"(unknown nonlinearity {nonlinearity!r}; expected one of {', '.join(NONLINEARITIES)})"
        )
    return nonlinearity


class ElmanCell(ProjectedCell):
    r"""One Elman (vanilla RNN) step; the same parameters and maths as :class:`torch.nn.RNNCell`.

    .. math::
        h_t = \mathrm{act}(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),
        \qquad \mathrm{act} \in \{\tanh, \mathrm{ReLU}\}

    Shapes: ``x_t`` ``(N, input_size)``, ``h`` ``(N, hidden_size)``; returns ``(h_t, h_t)``
    (the output of an Elman step is its state). Parameters ``weight_ih (H, I)``,
    ``weight_hh (H, H)``, ``bias_ih (H,)``, ``bias_hh (H,)`` load from an ``nn.RNNCell``
    state dict unchanged.

    The fast path folds both biases into :meth:`project_input` (``W_ih x + b_ih + b_hh``
    for all steps in one GEMM), so a step inside a layer is one ``addmm`` and the
    activation. Plain reference loop::

        h = cell.initial_state(N, like=x)
        for x_t in x:                      # x: (T, N, I)
            out_t, h = cell(x_t, h)

    Example::

        >>> import torch
        >>> from seqmodels import ElmanCell
        >>> cell = ElmanCell(4, 8, nonlinearity="relu")
        >>> out, h = cell(torch.randn(2, 4), torch.zeros(2, 8))
        >>> out.shape
        torch.Size([2, 8])
    """

    sums_projections = True  # z_t = (W_ih x_t + b_ih + b_hh) + W_hh h_{t-1}: one addmm

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        init: str = "default",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        # Read by reset_parameters, which the base class calls once the tensors exist.
        self.nonlinearity = check_nonlinearity(nonlinearity)
        self.init = check_init(init)
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        init_elman_(
            self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.init, self.nonlinearity
        )

    def step_forward(self, z_t: Tensor, _: None, h: Tensor) -> tuple[Tensor, tuple[Tensor]]:
        h = torch.tanh(z_t) if self.nonlinearity == "tanh" else torch.relu(z_t)  # (N, H)
        return h, (h,)

    def step_backward(self, grad_state, saved, state):
        (grad_h,), (h,) = grad_state, saved
        if self.nonlinearity == "tanh":  # tanh' = 1 - h^2
            return torch.addcmul(grad_h, grad_h * h, h, value=-1.0), None, (None,)
        return torch.where(h > 0, grad_h, 0.0), None, (None,)  # relu' = [h > 0]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.init != "default":
            s += f", init={self.init!r}"
        return s
