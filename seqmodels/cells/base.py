"""The cell contract: one time step of a recurrent network.

A cell knows nothing about time, direction, depth, padding or devices. The layers in
:mod:`seqmodels.layers` run any cell over a sequence and add all of that.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

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
