r"""Gated cells: LSTM and GRU, with ``torch.nn.LSTMCell`` / ``torch.nn.GRUCell`` parameters.

LSTM (gates in torch's order i, f, g, o; state ``(h, c)``):

.. math::
    \begin{aligned}
    (i, f, g, o) &= (\sigma, \sigma, \tanh, \sigma)(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})\\
    c_t &= f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)
    \end{aligned}

GRU (gates r, z, n; state ``h``):

.. math::
    \begin{aligned}
    r &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \quad
    z = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz})\\
    n &= \tanh(W_{in} x_t + b_{in} + r \odot (W_{hn} h_{t-1} + b_{hn})), \quad
    h_t = (1 - z) \odot n + z \odot h_{t-1}
    \end{aligned}

Both have the ``project_input`` fast path: the input half of every step is one GEMM; a step
is one ``addmm`` with a row-major ``W_hh^T`` plus the gate arithmetic.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqmodels.cells.base import ProjectedStep, RecurrentCell
from seqmodels.cells.linear import project, register_rnn_parameters, row_major_t
from seqmodels.core.errors import check_bool

#: Initialisations every gated cell takes; :class:`LSTMCell` also takes ``"forget_bias"``.
GATED_INITS = ("default", "orthogonal")
#: The forget-gate bias of ``init="forget_bias"`` (Gers et al. 2000; Jozefowicz et al. 2015).
FORGET_BIAS = 1.0


class _GatedCell(RecurrentCell):
    """Parameters, initialisation and the input projection shared by the gated cells."""

    gates: int  # 4 (LSTM) or 3 (GRU)
    inits: tuple[str, ...] = GATED_INITS  # the ``init`` values this cell takes

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        init: str = "default",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        self.bias = check_bool("bias", bias)
        if init not in self.inits:
            hint = (
                " ('forget_bias' sets an LSTM's forget-gate bias; a GRU has no forget gate)"
                if init == "forget_bias"
                else ""
            )
            raise ValueError(
                f"unknown init {init!r} for {type(self).__name__}; "
                f"expected one of {', '.join(self.inits)}{hint}"
            )
        if init == "forget_bias" and not self.bias:
            raise ValueError(
                f"init='forget_bias' sets the forget gate's bias, but {type(self).__name__} "
                "was built with bias=False; use bias=True or another init"
            )
        self.init = init
        register_rnn_parameters(self, input_size, hidden_size, self.gates, bias, device, dtype)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """``default``: every tensor ~ U(-1/sqrt(H), 1/sqrt(H)), as torch's gated modules.

        ``orthogonal``: each gate's block of W_hh orthogonal, W_ih xavier, biases zero.

        ``forget_bias`` (LSTM only): ``default``, then the forget gate's slice of the biases
        (rows H:2H, torch's gate order i, f, g, o) set so that b_ih + b_hh = 1 there
        (b_ih = 1, b_hh = 0): the forget gate starts near sigmoid(1) = 0.73 instead of 0.5, so
        the cell state decays more slowly before training (Gers et al. 2000; Jozefowicz et
        al. 2015). Every other tensor and slice is exactly ``default``'s.
        """
        bound = 1.0 / math.sqrt(self.hidden_size)
        if self.init in ("default", "forget_bias"):
            for tensor in self.parameters():
                nn.init.uniform_(tensor, -bound, bound)
            if self.init == "forget_bias":
                forget = slice(self.hidden_size, 2 * self.hidden_size)
                self.bias_ih[forget] = FORGET_BIAS
                self.bias_hh[forget] = 0.0
            return
        nn.init.xavier_uniform_(self.weight_ih)
        for block in self.weight_hh.chunk(self.gates, 0):
            nn.init.orthogonal_(block)
        if self.bias_ih is not None:
            self.bias_ih.zero_()
            self.bias_hh.zero_()

    def _check_input(self, x_t: Tensor) -> None:
        if x_t.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expected input with {self.input_size} features, "
                f"got shape {tuple(x_t.shape)}"
            )

    def forward(self, x_t: Tensor, state=None):
        self._check_input(x_t)
        if state is None:
            state = self.initial_state(x_t.shape[0], like=x_t)
        return self.forward_projected(self.project_input(x_t), state)

    def forward_projected(self, p_t: Tensor, state):
        return self._step(p_t, state, self.weight_hh.t())

    def projected_step(self) -> ProjectedStep:
        weight_hh_t = row_major_t(self.weight_hh)  # (H, G*H), once per sequence

        def step(p_t: Tensor, state):
            return self._step(p_t, state, weight_hh_t)

        return step

    def _step(self, p_t: Tensor, state, weight_hh_t: Tensor):  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.init != "default":
            s += f", init={self.init!r}"
        return s


class LSTMCell(_GatedCell):
    """One LSTM step with :class:`torch.nn.LSTMCell`'s parameters; the state is ``(h, c)``.

    ``forward(x_t, (h, c)) -> (h_t, (h_t, c_t))``. The projection folds both biases in.

    Example::

        >>> import torch
        >>> from seqmodels import LSTMCell
        >>> cell = LSTMCell(4, 8)
        >>> ref = torch.nn.LSTMCell(4, 8)
        >>> _ = ref.load_state_dict(cell.state_dict())       # same names and gate order
        >>> x, h, c = torch.randn(2, 4), torch.randn(2, 8), torch.randn(2, 8)
        >>> out, (h1, c1) = cell(x, (h, c))
        >>> torch.testing.assert_close((h1, c1), ref(x, (h, c)))
    """

    gates = 4
    inits = (*GATED_INITS, "forget_bias")

    def initial_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, Tensor]:
        zeros = like.new_zeros(batch_size, self.hidden_size)
        return zeros, zeros.clone()

    def project_input(self, x: Tensor) -> Tensor:
        bias = None if self.bias_ih is None else self.bias_ih + self.bias_hh
        return project(x, self.weight_ih, bias)  # (..., 4H)

    def _step(self, p_t, state, weight_hh_t):
        h, c = state
        gates = torch.addmm(p_t, h, weight_hh_t)  # (N, 4H)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class GRUCell(_GatedCell):
    """One GRU step with :class:`torch.nn.GRUCell`'s parameters; the state is ``h``.

    ``forward(x_t, h) -> (h_t, h_t)``. ``b_hn`` sits inside the reset gate's product, so only
    ``b_ih`` is folded into the projection.

    Example::

        >>> import torch
        >>> from seqmodels import GRUCell
        >>> cell = GRUCell(4, 8)
        >>> ref = torch.nn.GRUCell(4, 8)
        >>> _ = ref.load_state_dict(cell.state_dict())
        >>> x, h = torch.randn(2, 4), torch.randn(2, 8)
        >>> torch.testing.assert_close(cell(x, h)[0], ref(x, h))
    """

    gates = 3

    def project_input(self, x: Tensor) -> Tensor:
        return project(x, self.weight_ih, self.bias_ih)  # (..., 3H)

    def _step(self, p_t, h, weight_hh_t):
        if self.bias_hh is None:
            gh = torch.mm(h, weight_hh_t)
        else:
            gh = torch.addmm(self.bias_hh, h, weight_hh_t)  # (N, 3H)
        p_r, p_z, p_n = p_t.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(p_r + h_r)
        z = torch.sigmoid(p_z + h_z)
        n = torch.tanh(p_n + r * h_n)
        h = n + z * (h - n)
        return h, h
