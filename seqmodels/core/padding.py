"""Padding: per-sequence lengths, the one mask over real steps, the one per-sequence reversal.

A padded batch holds sequences of different lengths in one tensor; steps at or beyond a
sequence's length are padding. Everything in seqmodels that needs to know which steps are
real asks :func:`length_mask` (or :meth:`Lengths.mask`), and everything that walks a padded
batch backwards in time uses :func:`reverse_padded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

#: Target value that losses and metrics skip (``torch.nn.functional.cross_entropy``'s default).
IGNORE_INDEX = -100


def length_mask(lengths: Tensor, steps: int, *, time_major: bool = False) -> Tensor:
    """Boolean mask of real steps: ``(N, T)``, or ``(T, N)`` when ``time_major``.

    Example::

        >>> import torch
        >>> length_mask(torch.tensor([2, 1]), 3)
        tensor([[ True,  True, False],
                [ True, False, False]])
    """
    t = torch.arange(steps, device=lengths.device)
    if time_major:
        return t.unsqueeze(1) < lengths.unsqueeze(0)  # (T, N)
    return t.unsqueeze(0) < lengths.unsqueeze(1)  # (N, T)


@dataclass(frozen=True)
class Lengths:
    """Per-sequence lengths of a padded time-major batch.

    ``values`` is an int64 tensor ``(N,)`` on the data's device; ``min``/``max`` are cached
    as Python ints so a time loop never synchronises with the device.
    """

    values: Tensor
    min: int
    max: int

    def mask(self, steps: int) -> Tensor:
        """Boolean ``(T, N)``: True where step t is a real step of sequence n."""
        return length_mask(self.values, steps, time_major=True)

    @classmethod
    def of(cls, values: Tensor, steps: int) -> Lengths | None:
        """Trusted lengths (e.g. from a ``PackedSequence``); ``None`` when all are full."""
        if values.numel() == 0:
            return None
        lo, hi = int(values.min()), int(values.max())
        if lo == steps:  # every sequence is full: no mask needed
            return None
        return cls(values, lo, hi)


def make_lengths(
    lengths: Sequence[int] | Tensor, batch_size: int, steps: int, device: torch.device
) -> Lengths | None:
    """Validate user lengths against a ``(T, N, ...)`` batch; errors name expected and actual.

    Returns ``None`` when every sequence has all ``steps`` steps (or the batch is empty).
    Inside ``torch.compile`` and ``torch.export`` only the shape and dtype are checked.
    """
    values = torch.as_tensor(lengths)
    if values.dim() != 1 or values.shape[0] != batch_size:
        raise ValueError(
            f"lengths must have one entry per sequence: expected shape ({batch_size},), "
            f"got {tuple(values.shape)}"
        )
    if batch_size == 0:  # nothing to mask (``torch.as_tensor([])`` is float: no dtype check)
        return None
    if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got dtype {values.dtype}")
    values = values.to(dtype=torch.int64)
    if torch.compiler.is_compiling():
        # Checking the values would read them on the host, which a traced graph cannot do
        # without breaking: traced, they are taken as given, and any step may be padded.
        return Lengths(values.to(device), 0, steps)
    lo, hi = int(values.min()), int(values.max())
    if lo < 1:
        index = int(torch.argmin(values))
        raise ValueError(
            f"lengths must be at least 1, got {lo} for sequence {index} "
            "(drop empty sequences before the RNN)"
        )
    if hi > steps:
        index = int(torch.argmax(values))
        raise ValueError(
            f"lengths must not exceed the sequence length {steps}, got {hi} for sequence {index}"
        )
    return Lengths.of(values.to(device), steps)


def reverse_padded(x: Tensor, lengths: Lengths | None) -> Tensor:
    """Reverse each sequence within its own length: ``y[t, n] = x[L_n - 1 - t, n]`` for t < L_n.

    ``x`` is time-major ``(T, N, ...)``. Padded steps stay where they are, so the backward
    direction starts at each sequence's own last real step. The map is its own inverse.
    """
    if lengths is None:
        return x.flip(0)
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device).unsqueeze(1)  # (T, 1)
    last = lengths.values.unsqueeze(0) - 1  # (1, N)
    index = torch.where(t <= last, last - t, t)  # (T, N)
    index = index.view(steps, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)
