"""Exact float32 for comparisons against ``torch.nn.RNN`` on a GPU: TF32 off, then restored.

On Ampere and later GPUs, cuDNN computes float32 RNNs in TF32 by default
(``torch.backends.cudnn.allow_tf32`` is True): about 10 bits of mantissa in the matrix
products, so ``nn.RNN`` differs from exact float32 maths by ~5e-4, two orders of magnitude
above the comparison's tolerance. Matrix products outside cuDNN follow
``torch.backends.cuda.matmul.allow_tf32`` (False by default, but a user may have turned it
on). :func:`exact_float32` turns both off for the duration of a comparison and restores what
the caller had. On a CPU neither flag changes anything.

Example::

    >>> import torch
    >>> with exact_float32() as before:
    ...     torch.backends.cudnn.allow_tf32
    False
    >>> torch.backends.cudnn.allow_tf32 == before.cudnn
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TF32Flags:
    """The TF32 switches that affect float32 maths on CUDA."""

    cudnn: bool  # torch.backends.cudnn.allow_tf32 (convolutions and RNNs)
    matmul: bool  # torch.backends.cuda.matmul.allow_tf32

    def describe(self) -> str:
        """What a report says: TF32 off during the comparison, and what the caller had."""
        was = ", ".join(
            f"{name}={value}"
            for name, value in (
                ("torch.backends.cudnn.allow_tf32", self.cudnn),
                ("torch.backends.cuda.matmul.allow_tf32", self.matmul),
            )
        )
        return f"TF32 off during the comparison (exact float32; before: {was}; restored after)"


def tf32_flags() -> TF32Flags:
    """The current TF32 switches."""
    return TF32Flags(torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)


def _set(flags: TF32Flags) -> None:
    torch.backends.cudnn.allow_tf32 = flags.cudnn
    torch.backends.cuda.matmul.allow_tf32 = flags.matmul


@contextmanager
def exact_float32() -> Iterator[TF32Flags]:
    """TF32 off in cuDNN and in CUDA matrix products; yields the caller's flags, which are
    restored on exit (also when the body raises)."""
    # torch >= 2.9 also has a per-operator API (torch.backends.cudnn.rnn.fp32_precision);
    # the two legacy switches set every operator's value consistently, and torch documents
    # them on every version this package supports (2.2 onwards).
    before = tf32_flags()
    _set(TF32Flags(cudnn=False, matmul=False))
    try:
        yield before
    finally:
        _set(before)
