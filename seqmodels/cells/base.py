"""The cell contract: one time step of a recurrent network.

A cell knows nothing about time, direction, depth, padding or devices. The layers in
:mod:`seqmodels.layers` run any cell over a sequence and add all of that.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from seqmodels.cells.linear import project, register_rnn_parameters, row_major_t
from seqmodels.core.errors import check_positive_int
from seqmodels.core.state import State

#: One step on a slice of :meth:`RecurrentCell.project_input`: ``(p_t, state) -> (out_t, state)``.
ProjectedStep = Callable[[Tensor, State], tuple[Tensor, State]]


class RecurrentCell(nn.Module):
    r"""Base class for one step of a recurrent network. Research code subclasses it.

    A subclass sets ``input_size`` and ``hidden_size`` (and ``output_size`` when its
    per-step output is not ``hidden_size`` wide) and implements

    * ``forward(x_t, state) -> (output_t, new_state)``: one step on a batch,
      ``x_t`` is ``(N, input_size)``, ``output_t`` is ``(N, output_size)``.
    * optionally ``initial_state(batch_size, like)``: the default returns zeros of shape
      ``(batch_size, hidden_size)`` on ``like``'s device and dtype. Override it when the
      state is a tuple (LSTM) or not zero.
    * optionally the fast path ``project_input(x)`` + ``forward_projected(p_t, state)``:
      ``project_input`` maps the whole input ``(T, N, input_size)`` at once (one large
      matrix multiply instead of T small ones) and ``forward_projected`` does the rest
      of the step on one time slice of it. Layers use the pair when ``project_input``
      returns something other than ``None`` (the base class returns ``None``).

    Everything about time (directions, padding, packing, stacking) is added by the layers,
    so a new cell gets bidirectional, stacked, padded and packed sequences for free.

    Example::

        >>> import torch
        >>> from seqmodels import RecurrentCell, Recurrent
        >>> class LeakyCell(RecurrentCell):
        ...     def __init__(self, input_size, hidden_size):
        ...         super().__init__(input_size, hidden_size)
        ...         self.linear = torch.nn.Linear(input_size + hidden_size, hidden_size)
        ...     def forward(self, x_t, h):
        ...         h = 0.5 * h + 0.5 * torch.tanh(self.linear(torch.cat([x_t, h], -1)))
        ...         return h, h
        >>> layer = Recurrent(LeakyCell(3, 5))
        >>> output, h_n = layer(torch.randn(7, 2, 3))  # (T, N, F)
        >>> output.shape, h_n.shape
        (torch.Size([7, 2, 5]), torch.Size([1, 2, 5]))
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size

    @property
    def output_size(self) -> int:
        """Width of ``output_t``; the hidden size unless a subclass says otherwise."""
        return self.hidden_size

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x_t, state)")

    def initial_state(self, batch_size: int, like: Tensor) -> State:
        """Zeros ``(batch_size, hidden_size)`` on ``like``'s device and dtype."""
        return like.new_zeros(batch_size, self.hidden_size)

    def project_input(self, x: Tensor) -> Tensor | None:
        """Input part of all steps at once, ``(T, N, F) -> (T, N, P)``; ``None``: no fast path."""
        return None

    def forward_projected(self, p_t: Tensor, state: State) -> tuple[Tensor, State]:
        """The rest of one step, given the time slice ``p_t`` of :meth:`project_input`."""
        raise NotImplementedError(
            f"{type(self).__name__}.project_input returned a projection, so it must also "
            "implement forward_projected(p_t, state)"
        )

    def projected_step(self) -> ProjectedStep:
        """The step a layer runs on each slice of :meth:`project_input` for one sequence."""
        return self.forward_projected


#: How ``h_{t-1}`` enters a :class:`ProjectedCell`'s step: a GEMM with ``weight_hh``
#: ``(G*H, H)``, or an elementwise product with ``weight_hh`` ``(H,)`` (IndRNN).
RECURRENCES = ("matrix", "diagonal")


class ProjectedCell(RecurrentCell):
    r"""A cell as the BPTT engine runs it: two projections and a pointwise step.

    .. math::
        \begin{aligned}
        a_t &= W_{ih} x_t + b_{ih}            && \text{input projection, all steps in one GEMM}\\
        r_t &= W_{hh} h_{t-1} + b_{hh}        && \text{recurrent projection, one GEMM per step}
              \quad (\text{``diagonal''}: w_{hh} \odot h_{t-1} + b_{hh})\\
        s_t &= \mathrm{step}(a_t, r_t, s_{t-1}) && \text{pointwise; } h_t = s_t[0]
        \end{aligned}

    A subclass sets ``gates`` (the projections are ``gates * hidden_size`` wide) and writes
    :meth:`step`; :mod:`seqmodels.kernels.engine` then runs it over time with an exact
    backward: the input half's and the weights' gradients as whole-sequence GEMMs, and the
    step's own derivative derived from ``step`` by autograd. A cell may write that
    derivative by hand instead, as the pair :meth:`step_forward` / :meth:`step_backward`.

    The state is one tensor ``h`` ``(N, H)`` or a tuple whose first element is ``h``; the
    step's output is ``h``. Parameters: ``weight_ih`` ``(G*H, I)``, ``weight_hh``
    ``(G*H, H)`` (``(H,)`` when ``recurrence = "diagonal"``), ``bias_ih``/``bias_hh``
    ``(G*H,)``, laid out as torch's cells; any other parameter the step reads (a LayerNorm's
    gain) is found by the engine and gets its gradient too, except those named in
    ``input_parameters``, which only :meth:`project_input` reads.

    With ``sums_projections = True`` the step reads only ``a_t + r_t``: it is then called as
    ``step(a_t + r_t, None, state)`` (the sum made by the step's GEMM itself) and both biases
    are folded into the input projection.

    Example, a cell with coupled input and forget gates (``i = 1 - f``)::

        >>> import torch
        >>> from seqmodels import ProjectedCell, Recurrent
        >>> class CIFGCell(ProjectedCell):
        ...     gates = 3
        ...     sums_projections = True
        ...     def initial_state(self, batch_size, like):
        ...         return (like.new_zeros(batch_size, self.hidden_size),) * 2
        ...     def step(self, z, _, state):
        ...         h, c = state
        ...         f, g, o = z.chunk(3, 1)
        ...         f = torch.sigmoid(f)
        ...         c = f * c + (1 - f) * torch.tanh(g)
        ...         return torch.sigmoid(o) * torch.tanh(c), c
        >>> layer = Recurrent(CIFGCell(3, 5), backend="bptt")
        >>> output, (h_n, c_n) = layer(torch.randn(7, 2, 3))
        >>> output.shape, c_n.shape
        (torch.Size([7, 2, 5]), torch.Size([1, 2, 5]))
    """

    gates: int = 1
    recurrence: str = "matrix"
    sums_projections: bool = False
    #: Parameters (or submodules, by name) that only :meth:`project_input` reads, such as a
    #: LayerNorm of the input projection: autograd differentiates them with the projection,
    #: so the engine does not hand them to the step.
    input_parameters: tuple[str, ...] = ()

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        if self.recurrence not in RECURRENCES:
            raise ValueError(
                f"{type(self).__name__}.recurrence must be one of {RECURRENCES}, "
                f"got {self.recurrence!r}"
            )
        if self.recurrence == "diagonal" and self.gates != 1:
            raise ValueError(
                f"{type(self).__name__}: a diagonal recurrence multiplies h elementwise, so "
                f"it needs gates = 1, got gates = {self.gates}"
            )
        self.bias = bias
        diagonal = self.recurrence == "diagonal"
        register_rnn_parameters(
            self,
            input_size,
            hidden_size,
            self.gates,
            bias,
            device,
            dtype,
            diagonal=diagonal,
            recurrent_size=self.recurrent_size,
        )
        self.reset_parameters()

    @property
    def recurrent_size(self) -> int:
        """Width ``R`` of ``h``, which the recurrent projection reads (``weight_hh`` is
        ``(G*H, R)``): the hidden size unless a subclass feeds back something narrower (an
        LSTM with projections, ``R = proj_size``). Read before the parameters exist."""
        return self.hidden_size

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), as torch's recurrent modules."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for tensor in self.parameters():
            nn.init.uniform_(tensor, -bound, bound)

    # --- what a subclass writes ------------------------------------------------------------

    def step(self, a_t: Tensor, r_t: Tensor | None, state: State) -> State:
        """The pointwise rest of one step: ``(a_t (N, G*H), r_t (N, G*H), state) -> state``.

        Out of place (autograd differentiates it); ``r_t`` is ``None`` when
        ``sums_projections`` (``a_t`` is then the sum). A cell with a hand-written
        derivative writes :meth:`step_forward` instead and inherits this."""
        if self.has_step_backward():
            return self.step_forward(a_t, r_t, state)[0]
        raise NotImplementedError(f"{type(self).__name__} must implement step(a_t, r_t, state)")

    def step_forward(
        self, a_t: Tensor, r_t: Tensor | None, state: State
    ) -> tuple[State, tuple[Tensor, ...]]:
        """:meth:`step`, also returning what :meth:`step_backward` reads."""
        return self.step(a_t, r_t, state), ()

    def step_backward(
        self, grad_state: tuple[Tensor, ...], saved: tuple[Tensor, ...], state: tuple[Tensor, ...]
    ) -> tuple[Tensor, Tensor | None, tuple[Tensor | None, ...]]:
        """The hand-written derivative of one step (optional).

        ``grad_state``: ``dL/ds_t`` per state tensor (a tuple even for a one-tensor state);
        ``saved``: what :meth:`step_forward` returned; ``state``: ``s_{t-1}`` as a tuple.
        Returns ``(dL/da_t, dL/dr_t, dL/ds_{t-1})``, where ``dL/ds_{t-1}`` counts only the
        step's direct paths (the engine adds the recurrent projection's); ``None`` marks
        a zero. ``dL/dr_t`` is ``None`` when ``sums_projections`` (it equals ``dL/da_t``).
        A cell overrides this together with :meth:`step_forward`; the step may then read
        no parameter other than the four projection tensors."""
        raise NotImplementedError

    @classmethod
    def has_step_backward(cls) -> bool:
        """True when the class writes its step's derivative by hand."""
        return cls.step_backward is not ProjectedCell.step_backward

    # --- what the engine and the step loop share -------------------------------------------

    def projection_biases(self) -> tuple[Tensor | None, Tensor | None]:
        """``(bias of a_t, bias of r_t)``: both biases in ``a_t`` when ``sums_projections``."""
        if self.bias_ih is None:
            return None, None
        if self.sums_projections:
            return self.bias_ih + self.bias_hh, None
        return self.bias_ih, self.bias_hh

    def project_input(self, x: Tensor) -> Tensor:
        """``a`` for every step at once: ``(..., I) -> (..., G*H)``, one GEMM."""
        return project(x, self.weight_ih, self.projection_biases()[0])

    def forward(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if x_t.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expected input with {self.input_size} features, "
                f"got shape {tuple(x_t.shape)}"
            )
        if state is None:
            state = self.initial_state(x_t.shape[0], like=x_t)
        return self.forward_projected(self.project_input(x_t), state)

    def forward_projected(self, p_t: Tensor, state: State) -> tuple[Tensor, State]:
        weight = self.weight_hh if self.recurrence == "diagonal" else self.weight_hh.t()
        return self._projected(p_t, state, weight)

    def projected_step(self, recurrent_mask: Tensor | None = None) -> ProjectedStep:
        """The step a layer runs on each slice of :meth:`project_input` for one sequence;
        with ``recurrent_mask`` ``(N, H)`` (recurrent dropout), the recurrent projection
        reads ``recurrent_mask * h_{t-1}``."""
        if self.recurrence == "diagonal":
            weight = self.weight_hh
        else:
            weight = row_major_t(self.weight_hh)  # (H, G*H), once per sequence

        def step(p_t: Tensor, state: State) -> tuple[Tensor, State]:
            return self._projected(p_t, state, weight, recurrent_mask)

        return step

    def _projected(
        self, p_t: Tensor, state: State, weight: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, State]:
        h = state if isinstance(state, Tensor) else state[0]
        if mask is not None:
            h = h * mask
        a_t, r_t = recurrent_projection(
            p_t, h, weight, self.projection_biases()[1], self.recurrence, self.sums_projections
        )
        new = self.step(a_t, r_t, state)
        return (new if isinstance(new, Tensor) else new[0]), new


def recurrent_projection(
    a_t: Tensor,
    h: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    recurrence: str,
    sums: bool,
) -> tuple[Tensor, Tensor | None]:
    """``(a_t, r_t)`` for the step: ``r_t = h @ weight (+ bias)`` (``weight`` is ``W_hh^T``;
    for ``"diagonal"``, ``h * weight``), or ``(a_t + r_t, None)`` when ``sums``, made by the
    one ``addmm``/``addcmul``."""
    if recurrence == "diagonal":
        if sums:
            return torch.addcmul(a_t, h, weight), None
        r_t = h * weight
        return a_t, r_t if bias is None else r_t + bias
    if sums:
        return torch.addmm(a_t, h, weight), None
    return a_t, torch.mm(h, weight) if bias is None else torch.addmm(bias, h, weight)
