"""The Elman cell: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

from __future__ import annotations

import torch
from torch import Tensor

from seqmodels.cells.base import ProjectedStep, RecurrentCell
from seqmodels.cells.init import check_init, init_elman_
from seqmodels.cells.linear import project, register_rnn_parameters, row_major_t

NONLINEARITIES = ("tanh", "relu")


def check_nonlinearity(nonlinearity: str) -> str:
    if nonlinearity not in NONLINEARITIES:
        # torch.nn.RNN's wording first, so code matching on it keeps working.
        raise ValueError(
            f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'. "
            f"(unknown nonlinearity {nonlinearity!r}; expected one of {', '.join(NONLINEARITIES)})"
        )
    return nonlinearity


def elman_recur(p_t: Tensor, h: Tensor, weight_hh_t: Tensor, nonlinearity: str) -> Tensor:
    """The recurrent part of a step: ``act(p_t + h @ W_hh^T)``, one fused ``addmm``.

    Takes ``W_hh^T`` (``(H, H)``), so a layer can pass a row-major copy made once per sequence.
    """
    z = torch.addmm(p_t, h, weight_hh_t)  # (N, H)
    return torch.tanh(z) if nonlinearity == "tanh" else torch.relu(z)


class ElmanCell(RecurrentCell):
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
        super().__init__(input_size, hidden_size)
        self.nonlinearity = check_nonlinearity(nonlinearity)
        self.bias = bias
        self.init = check_init(init)
        register_rnn_parameters(self, input_size, hidden_size, 1, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_elman_(
            self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.init, self.nonlinearity
        )

    def _bias(self) -> Tensor | None:
        return None if self.bias_ih is None else self.bias_ih + self.bias_hh

    def forward(self, x_t: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if x_t.shape[-1] != self.input_size:
            raise ValueError(
                f"ElmanCell expected input with {self.input_size} features, "
                f"got shape {tuple(x_t.shape)}"
            )
        if state is None:
            state = self.initial_state(x_t.shape[0], like=x_t)
        h = elman_recur(self.project_input(x_t), state, self.weight_hh.t(), self.nonlinearity)
        return h, h

    def project_input(self, x: Tensor) -> Tensor:
        return project(x, self.weight_ih, self._bias())

    def forward_projected(self, p_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = elman_recur(p_t, state, self.weight_hh.t(), self.nonlinearity)
        return h, h

    def projected_step(self) -> ProjectedStep:
        weight_hh_t = row_major_t(self.weight_hh)  # (H, H), once per sequence
        nonlinearity = self.nonlinearity

        def step(p_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
            h = elman_recur(p_t, h, weight_hh_t, nonlinearity)  # (N, H)
            return h, h

        return step

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.init != "default":
            s += f", init={self.init!r}"
        return s
