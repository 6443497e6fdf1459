r"""The independently recurrent cell, IndRNN (Li et al. 2018).

Each hidden unit sees only its own previous value: the recurrent weight is a vector and the
recurrence an elementwise product, so a step has no recurrent GEMM, and a unit's gradient
through time is a product of its own weight and activation slopes, which the weight's range
controls directly (Li et al. 2018, §3).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seqmodels.cells.base import ProjectedCell
from seqmodels.cells.elman import ElmanCell, check_nonlinearity


class IndRNNCell(ProjectedCell):
    r"""One IndRNN step: :math:`h_t = \mathrm{act}(W_{ih} x_t + b_{ih} + w_{hh} \odot h_{t-1}
    + b_{hh})`.

    Shapes: ``x_t`` ``(N, input_size)``, ``h`` ``(N, hidden_size)``; returns ``(h_t, h_t)``.
    Parameters: ``weight_ih`` ``(H, I)``, ``weight_hh`` ``(H,)`` (a vector: one recurrent
    weight per unit), ``bias_ih``, ``bias_hh`` ``(H,)``. ``nonlinearity`` is ``"relu"`` (the
    paper's, and the default) or ``"tanh"``.

    Initialisation (Li et al. 2018, §4): ``weight_hh`` ~ U(``recurrent_min``,
    ``recurrent_max``), U(0, 1) by default; ``weight_ih`` ~ U(-1/sqrt(H), 1/sqrt(H)) as
    torch's RNN; biases zero. For a ReLU IndRNN over T steps, the paper keeps every
    ``|w_hh| <= 2^(1/T)`` so no unit's gradient grows by more than 2 over the sequence, and
    for long-memory tasks starts the last layer's weights at or above ``0.5^(1/T)``, so every
    unit keeps at least half of its state over the sequence: ``recurrent_min`` and
    ``recurrent_max`` set the initial range (the constraint during training is the
    optimiser's business, e.g. a clamp after each step).

    The step is the Elman step with a diagonal recurrence (its activation and derivative are
    :class:`~seqmodels.ElmanCell`'s), run by the engine with no per-step GEMM.

    Example::

        >>> import torch
        >>> from seqmodels import IndRNNCell, Recurrent
        >>> cell = IndRNNCell(4, 8)
        >>> cell.weight_hh.shape
        torch.Size([8])
        >>> output, h_n = Recurrent(cell)(torch.randn(6, 2, 4))
        >>> output.shape
        torch.Size([6, 2, 8])
    """

    recurrence = "diagonal"
    sums_projections = True  # W_ih x_t + b_ih + b_hh for every step in one GEMM

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "relu",
        *,
        recurrent_max: float = 1.0,
        recurrent_min: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.nonlinearity = check_nonlinearity(nonlinearity)
        if not recurrent_max > 0:
            raise ValueError(f"recurrent_max must be > 0, got {recurrent_max!r}")
        if not 0 <= recurrent_min < recurrent_max:
            raise ValueError(
                f"recurrent_min must be in [0, recurrent_max={recurrent_max!r}), "
                f"got {recurrent_min!r}"
            )
        # read by reset_parameters
        self.recurrent_min, self.recurrent_max = float(recurrent_min), float(recurrent_max)
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, self.recurrent_min, self.recurrent_max)
        if self.bias_ih is not None:
            self.bias_ih.zero_()
            self.bias_hh.zero_()

    # The Elman step: act(z_t) with z_t = a_t + w_hh * h_{t-1}, and its derivative.
    step_forward = ElmanCell.step_forward
    step_backward = ElmanCell.step_backward

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}", *([] if self.bias else ["bias=False"])]
        if self.nonlinearity != "relu":
            options.append(f"nonlinearity={self.nonlinearity!r}")
        return ", ".join(options)
