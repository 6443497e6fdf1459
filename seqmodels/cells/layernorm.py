r"""Layer-normalised gated cells: LayerNorm LSTM and LayerNorm GRU.

Layer normalisation (Ba, Kiros & Hinton 2016, §3.1) normalises each projection over its
features before the gates, so the gates' inputs keep one scale however the weights grow.
The input projection's LayerNorm covers every step at once (it is part of
:meth:`~seqmodels.ProjectedCell.project_input`, one GEMM and one normalisation for the whole
sequence); the recurrent projection's is part of the step.

LayerNorm LSTM (gates in torch's order i, f, g, o; state ``(h, c)``)::

    gates = LN_ih(W_ih x_t) + LN_hh(W_hh h_{t-1}) + b          # (N, 4H)
    i, f, o = sigmoid(gates_i, gates_f, gates_o);  g = tanh(gates_g)
    c_t = f * c_{t-1} + i * g                                  # carried unnormalised
    h_t = o * tanh(LN_c(c_t))

LayerNorm GRU (gates r, z, n as torch's GRU; state ``h``)::

    a = LN_ih(W_ih x_t) + b;  q = LN_hh(W_hh h_{t-1})          # (N, 3H) each
    r = sigmoid(a_r + q_r);  z = sigmoid(a_z + q_z)
    n = tanh(a_n + r * (q_n + b_hn))
    h_t = (1 - z) * n + z * h_{t-1}

``LN_ih`` and ``LN_hh`` are :class:`torch.nn.LayerNorm` over all ``G*H`` features with a gain
and no shift (the bias ``b`` is the shift); ``LN_c`` has both. Both cells are
:class:`~seqmodels.ProjectedCell` definitions written only as their step: the engine derives
the step's derivative, and the gains get their gradients with it. The LayerNorm LSTM also has
a compiled walk on CPU (:mod:`seqmodels.kernels.layernorm`), held to this definition by tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqmodels.cells.base import ProjectedCell
from seqmodels.cells.linear import project
from seqmodels.core.errors import check_bool

#: LayerNorm's epsilon in both cells (torch's default).
EPS = 1e-5


class _LayerNormCell(ProjectedCell):
    """The input half shared by both cells: ``a = LN_ih(W_ih x) + b`` for all steps at once."""

    input_parameters = ("ln_ih", "bias")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        bias = check_bool("bias", bias)
        # The projections carry no bias of their own: b is added after the normalisation.
        super().__init__(input_size, hidden_size, False, device=device, dtype=dtype)
        factory = {"device": device, "dtype": dtype}
        width = self.gates * hidden_size
        self.ln_ih = nn.LayerNorm(width, eps=EPS, bias=False, **factory)
        self.ln_hh = nn.LayerNorm(width, eps=EPS, bias=False, **factory)
        del self.bias  # the flag the base class set; here ``bias`` is the parameter
        self.bias = nn.Parameter(torch.empty(width, **factory)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Weights and biases ~ U(-1/sqrt(H), 1/sqrt(H)), as torch's gated cells; every
        LayerNorm's gain 1 and shift 0, as ``nn.LayerNorm``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, tensor in self.named_parameters():
            if not name.startswith("ln_"):
                nn.init.uniform_(tensor, -bound, bound)
        for module in self.children():
            module.reset_parameters()

    def project_input(self, x: Tensor) -> Tensor:
        """``LN_ih(W_ih x) + b`` for every step: ``(..., I) -> (..., G*H)``."""
        # LN_ih's gain and the bias b as one layer_norm (its shift): one op each way.
        ln = self.ln_ih
        return F.layer_norm(
            project(x, self.weight_ih, None), ln.normalized_shape, ln.weight, self.bias, ln.eps
        )

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias is not None else s + ", bias=False"


class LayerNormLSTMCell(_LayerNormCell):
    r"""One layer-normalised LSTM step (Ba et al. 2016, §3.1); the state is ``(h, c)``.

    .. math::
        \begin{aligned}
        (i, f, g, o) &= (\sigma, \sigma, \tanh, \sigma)\big(\mathrm{LN}_{ih}(W_{ih} x_t)
            + \mathrm{LN}_{hh}(W_{hh} h_{t-1}) + b\big)\\
        c_t &= f \odot c_{t-1} + i \odot g, \qquad
        h_t = o \odot \tanh(\mathrm{LN}_c(c_t))
        \end{aligned}

    The carried state ``c_t`` is not normalised; only its read-out is. Parameters:
    ``weight_ih`` ``(4H, I)``, ``weight_hh`` ``(4H, H)``, ``bias`` ``(4H,)`` (``None`` with
    ``bias=False``), ``ln_ih`` and ``ln_hh`` (``nn.LayerNorm(4H, bias=False)``) and ``ln_c``
    (``nn.LayerNorm(H)``), all with ``eps=1e-5``.

    Example::

        >>> import torch
        >>> from seqmodels import LayerNormLSTMCell, Recurrent
        >>> layer = Recurrent(LayerNormLSTMCell(3, 5))
        >>> output, (h_n, c_n) = layer(torch.randn(7, 2, 3))
        >>> output.shape, c_n.shape
        (torch.Size([7, 2, 5]), torch.Size([1, 2, 5]))
    """

    gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
        self.ln_c = nn.LayerNorm(hidden_size, eps=EPS, device=device, dtype=dtype)

    def initial_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, Tensor]:
        zeros = like.new_zeros(batch_size, self.hidden_size)
        return zeros, zeros.clone()

    def step(self, a_t: Tensor, r_t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        c = state[1]
        i, f, g, o = (a_t + self.ln_hh(r_t)).chunk(4, 1)  # (N, H) each
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
        return h, c


class LayerNormGRUCell(_LayerNormCell):
    r"""One layer-normalised GRU step, in torch's gate order r, z, n; the state is ``h``.

    .. math::
        \begin{aligned}
        a &= \mathrm{LN}_{ih}(W_{ih} x_t) + b, \qquad q = \mathrm{LN}_{hh}(W_{hh} h_{t-1})\\
        r &= \sigma(a_r + q_r), \qquad z = \sigma(a_z + q_z), \qquad
        n = \tanh(a_n + r \odot (q_n + b_{hn}))\\
        h_t &= (1 - z) \odot n + z \odot h_{t-1}
        \end{aligned}

    As in torch's GRU, the candidate's recurrent part ``q_n + b_hn`` sits inside the reset
    gate's product, so it has a bias of its own. Parameters: ``weight_ih`` ``(3H, I)``,
    ``weight_hh`` ``(3H, H)``, ``bias`` ``(3H,)`` and ``bias_hn`` ``(H,)`` (both ``None``
    with ``bias=False``), ``ln_ih`` and ``ln_hh`` (``nn.LayerNorm(3H, bias=False)``).

    Example::

        >>> import torch
        >>> from seqmodels import LayerNormGRUCell, Recurrent
        >>> output, h_n = Recurrent(LayerNormGRUCell(3, 5))(torch.randn(7, 2, 3))
        >>> output.shape, h_n.shape
        (torch.Size([7, 2, 5]), torch.Size([1, 2, 5]))
    """

    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
        if bias:
            self.bias_hn = nn.Parameter(torch.empty(hidden_size, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_hn", None)
        self.reset_parameters()

    def step(self, a_t: Tensor, r_t: Tensor, h: Tensor) -> Tensor:
        a_r, a_z, a_n = a_t.chunk(3, 1)
        q_r, q_z, q_n = self.ln_hh(r_t).chunk(3, 1)  # (N, H) each
        if self.bias_hn is not None:
            q_n = q_n + self.bias_hn
        r = torch.sigmoid(a_r + q_r)
        z = torch.sigmoid(a_z + q_z)
        n = torch.tanh(a_n + r * q_n)
        return n + z * (h - n)
