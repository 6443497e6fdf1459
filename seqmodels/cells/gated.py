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

LSTM with projections (:class:`LSTMPCell`, a layer of ``torch.nn.LSTM(proj_size=P)``;
state ``(h, c)``, ``h`` of width ``P < H``): the LSTM's gates and ``c_t`` as above, then

.. math::
    h_t = W_{hr} (o \odot \tanh(c_t))

so ``W_{hh}`` is ``(4H, P)`` and the recurrence feeds back the projected ``h``.

All three are :class:`~seqmodels.cells.base.ProjectedCell` definitions: the input half of
every step is one GEMM; a step is one ``addmm`` with a row-major ``W_hh^T`` plus the gate
arithmetic. :class:`LSTMCell` and :class:`GRUCell` write it as :meth:`step_forward` with a
hand-written :meth:`step_backward` (the derivation is in :mod:`seqmodels.kernels.gated`'s
docstring); :class:`LSTMPCell` writes only its :meth:`~LSTMPCell.step`, whose derivative,
``W_hr``'s gradient included, the engine derives.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqmodels.cells.base import ProjectedCell
from seqmodels.core.errors import check_bool, check_positive_int

#: Initialisations every gated cell takes; :class:`LSTMCell` also takes ``"forget_bias"``.
GATED_INITS = ("default", "orthogonal")
#: The forget-gate bias of ``init="forget_bias"`` (Gers et al. 2000; Jozefowicz et al. 2015).
FORGET_BIAS = 1.0


class _GatedCell(ProjectedCell):
    """Initialisation options shared by the gated cells."""

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
        bias = check_bool("bias", bias)
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
        if init == "forget_bias" and not bias:
            raise ValueError(
                f"init='forget_bias' sets the forget gate's bias, but {type(self).__name__} "
                "was built with bias=False; use bias=True or another init"
            )
        self.init = init  # read by reset_parameters, which the base class calls
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)

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

    sums_projections = True  # z_t = (W_ih x_t + b_ih + b_hh) + W_hh h_{t-1}: one addmm

    def initial_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, Tensor]:
        zeros = like.new_zeros(batch_size, self.hidden_size)
        return zeros, zeros.clone()

    def step_forward(self, z_t: Tensor, _: None, state):
        c = state[1]
        i, f, g, o = z_t.chunk(4, 1)  # (N, H) each
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = torch.addcmul(f * c, i, g)  # f * c + i * g
        tanh_c = torch.tanh(c)
        h = o * tanh_c
        return (h, c), (i, f, g, o, tanh_c)

    def step_backward(self, grad_state, saved, state):
        grad_h, grad_c = grad_state
        i, f, g, o, tanh_c = saved
        grad_o = grad_h * tanh_c * o * (1 - o)
        grad_c = grad_c + grad_h * o * (1 - tanh_c * tanh_c)  # everything reaching c_t
        grad_i = grad_c * g * i * (1 - i)
        grad_f = grad_c * state[1] * f * (1 - f)
        grad_g = grad_c * i * (1 - g * g)
        return torch.cat((grad_i, grad_f, grad_g, grad_o), 1), None, (None, grad_c * f)


class LSTMPCell(_GatedCell):
    r"""One step of an LSTM with projections (LSTMP, Sak et al. 2014): one layer and
    direction of ``torch.nn.LSTM(proj_size=P)``, with its parameters; the state is ``(h, c)``.

    .. math::
        \begin{aligned}
        (i, f, g, o) &= (\sigma, \sigma, \tanh, \sigma)(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1}
            + b_{hh})\\
        c_t &= f \odot c_{t-1} + i \odot g, \qquad h_t = W_{hr} (o \odot \tanh(c_t))
        \end{aligned}

    Shapes: ``x_t`` ``(N, I)``, ``h`` ``(N, P)``, ``c`` ``(N, H)``; ``forward(x_t, (h, c)) ->
    (h_t, (h_t, c_t))`` and ``output_size`` is ``P``. Parameters, registered in
    ``nn.LSTM``'s order for one layer: ``weight_ih`` ``(4H, I)``, ``weight_hh`` ``(4H, P)``,
    ``bias_ih``, ``bias_hh`` ``(4H,)`` and ``weight_hr`` ``(P, H)``, so the default
    initialisation draws what ``nn.LSTM`` draws for that layer under the same seed.

    The cell writes only its :meth:`step`: the BPTT engine derives the step's derivative,
    ``weight_hr``'s gradient included (:mod:`seqmodels.kernels.engine`). The fast forms of
    :class:`LSTMCell` do not apply to it.

    Args:
        input_size: ``I``.
        hidden_size: ``H``, the width of the cell state ``c`` and of the gates.
        bias: with ``bias_ih`` and ``bias_hh``. Default: ``True``.
        proj_size: ``P``, the width of ``h``; ``0 < P < H``.
        init: ``"default"`` (every tensor ~ U(-1/sqrt(H), 1/sqrt(H)), as ``nn.LSTM``),
            ``"forget_bias"`` (that, then the forget gate's bias as :class:`LSTMCell`'s) or
            ``"orthogonal"`` (:class:`LSTMCell`'s, and ``weight_hr`` with orthonormal rows).

    Example::

        >>> import torch
        >>> from seqmodels import LSTMPCell
        >>> cell = LSTMPCell(4, 8, proj_size=3)
        >>> x, h, c = torch.randn(2, 4), torch.randn(2, 3), torch.randn(2, 8)
        >>> out, (h1, c1) = cell(x, (h, c))
        >>> out.shape, c1.shape
        (torch.Size([2, 3]), torch.Size([2, 8]))
    """

    gates = 4
    inits = (*GATED_INITS, "forget_bias")
    sums_projections = True  # as LSTMCell: z_t = (W_ih x_t + b_ih + b_hh) + W_hh h_{t-1}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        proj_size: int,
        init: str = "default",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("proj_size", proj_size)
        if proj_size >= hidden_size:  # nn.LSTM's message
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.proj_size = proj_size  # read by recurrent_size while the base class registers
        super().__init__(input_size, hidden_size, bias, init=init, device=device, dtype=dtype)
        factory = {"device": device, "dtype": dtype}
        self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size, **factory))
        self.reset_parameters()

    @property
    def recurrent_size(self) -> int:
        """``P``: the recurrence feeds back the projected ``h``."""
        return self.proj_size

    @property
    def output_size(self) -> int:
        return self.proj_size

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """:class:`LSTMCell`'s initialisation over all five tensors (``weight_hr`` last, as
        ``nn.LSTM`` draws it); with ``init="orthogonal"`` ``weight_hr`` has orthonormal rows."""
        if "weight_hr" not in self._parameters and "weight_hr" not in self.__dict__:
            # The base class initialises while it registers the projections, before
            # weight_hr exists; __init__ calls this again once it does, so every tensor is
            # drawn once, in nn.LSTM's order.
            return
        super().reset_parameters()
        if self.init == "orthogonal":
            nn.init.orthogonal_(self.weight_hr)

    def initial_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """Zeros: ``h`` ``(N, P)``, ``c`` ``(N, H)``."""
        return (
            like.new_zeros(batch_size, self.proj_size),
            like.new_zeros(batch_size, self.hidden_size),
        )

    def step(self, z_t: Tensor, _: None, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``z_t`` ``(N, 4H)`` (both projections and biases summed), ``state`` ``(h, c)`` ->
        ``(W_hr (o * tanh(c_t)), c_t)``: :class:`LSTMCell`'s gate arithmetic, projected."""
        (h, c), _ = LSTMCell.step_forward(self, z_t, None, state)
        return torch.mm(h, self.weight_hr.t()), c

    def extra_repr(self) -> str:
        return super().extra_repr() + f", proj_size={self.proj_size}"


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

    def step_forward(self, a_t: Tensor, r_t: Tensor, h: Tensor):
        a_r, a_z, a_n = a_t.chunk(3, 1)
        r_r, r_z, r_n = r_t.chunk(3, 1)  # r_n = W_hn h_{t-1} + b_hn, inside the reset gate
        r = torch.sigmoid(a_r + r_r)
        z = torch.sigmoid(a_z + r_z)
        n = torch.tanh(a_n + r * r_n)
        return n + z * (h - n), (r, z, n, r_n)

    def step_backward(self, grad_state, saved, state):
        (grad_h,), (r, z, n, r_n), (h,) = grad_state, saved, state
        grad_n = grad_h * (1 - z) * (1 - n * n)
        grad_z = grad_h * (h - n) * z * (1 - z)
        grad_r = grad_n * r_n * r * (1 - r)
        grad_a = torch.cat((grad_r, grad_z, grad_n), 1)
        return grad_a, torch.cat((grad_r, grad_z, grad_n * r), 1), (grad_h * z,)
