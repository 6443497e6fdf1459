"""Input formats: every public layout in, one internal layout out, and back.

Internally every layer works on time-major ``x`` of shape ``(T, N, F)`` plus optional
per-sequence :class:`~seqmodels.core.Lengths`. This module converts the public formats
(batch-first, unbatched, ``PackedSequence``, padded + lengths) to that layout and back, and
checks a caller's initial state against the state a layer would start from. Errors follow
``torch.nn.RNN``'s wording and are both ``ValueError`` and ``RuntimeError``
(:class:`~seqmodels.core.ShapeError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqmodels.core.errors import ArgumentTypeError, ShapeError, StateTypeError
from seqmodels.core.padding import Lengths, make_lengths
from seqmodels.core.state import State, map_state


@dataclass
class PreparedInput:
    """A public input converted to the internal layout, and what is needed to convert back."""

    x: Tensor  # (T, N, F)
    lengths: Lengths | None  # None: every sequence has all T steps
    packed: PackedSequence | None
    unbatched: bool
    batch_first: bool

    @property
    def batch_size(self) -> int:
        return self.x.shape[1]


def prepare_input(
    input: Tensor | PackedSequence,
    lengths: Sequence[int] | Tensor | None,
    batch_first: bool,
    input_size: int | None,
) -> PreparedInput:
    """Convert ``(T, N, F)``, ``(N, T, F)``, ``(T, F)`` or a ``PackedSequence`` to ``(T, N, F)``."""
    packed = None
    unbatched = False
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise ValueError("lengths must not be given with a PackedSequence (it carries its own)")
        packed = input
        x, lens = pad_packed_sequence(input)  # (T, N, F), original batch order
        lengths_obj = Lengths.of(lens.to(x.device), x.shape[0])
    else:
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(
                f"input must be a Tensor or PackedSequence, got {type(input).__name__}"
            )
        if input.dim() == 2:
            if lengths is not None:
                raise ValueError(
                    "lengths are only meaningful for a batch; got an unbatched (T, F) input"
                )
            unbatched = True
            x = input.unsqueeze(1)
        elif input.dim() == 3:
            x = input.transpose(0, 1) if batch_first else input
        else:
            layout = "(N, T, F)" if batch_first else "(T, N, F)"
            raise ShapeError(
                f"RNN: Expected input to be 2D or 3D, got {input.dim()}D tensor instead: "
                f"input must be 3-D {layout} or unbatched 2-D (T, F), "
                f"got shape {tuple(input.shape)}"
            )
        if x.shape[0] == 0:
            raise ShapeError(
                "Expected sequence length to be larger than 0 in RNN: "
                f"input has no time steps, shape {tuple(input.shape)}"
            )
        lengths_obj = None
        if lengths is not None:
            lengths_obj = make_lengths(lengths, x.shape[1], x.shape[0], x.device)
    if not x.dtype.is_floating_point:
        raise ValueError(f"input must be a floating-point tensor, got dtype {x.dtype}")
    if input_size is not None and x.shape[-1] != input_size:
        raise ShapeError(
            f"input.size(-1) must be equal to input_size. Expected {input_size}, got {x.shape[-1]}"
        )
    return PreparedInput(x, lengths_obj, packed, unbatched, batch_first)


def restore_output(output: Tensor, prep: PreparedInput) -> Tensor | PackedSequence:
    """Convert a ``(T, N, H)`` output back to the caller's format."""
    if prep.packed is not None:
        packed = prep.packed
        lens = _packed_lengths(packed)
        if packed.sorted_indices is not None:
            output = output.index_select(1, packed.sorted_indices)
            lens = lens[packed.sorted_indices.cpu()]
        data = pack_padded_sequence(output, lens, enforce_sorted=True).data
        return PackedSequence(
            data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
    if prep.unbatched:
        return output.squeeze(1)
    return output.transpose(0, 1) if prep.batch_first else output


def _packed_lengths(packed: PackedSequence) -> Tensor:
    """Lengths in the original batch order, on the CPU (as ``pack_padded_sequence`` wants)."""
    batch_sizes = packed.batch_sizes  # (T,), CPU
    n = int(batch_sizes[0])
    sorted_lengths = (batch_sizes.unsqueeze(0) > torch.arange(n).unsqueeze(1)).sum(1)
    if packed.unsorted_indices is None:
        return sorted_lengths
    return sorted_lengths[packed.unsorted_indices.cpu()]


def check_state(state: State, expected: State, unbatched: bool) -> State:
    """Validate a caller's initial state against ``expected`` (the layer's own initial state).

    ``state`` is ``(S, N, H)`` (unbatched ``(S, H)``) or a tuple of those, like ``expected``;
    returns it with the batch axis added for unbatched input.
    """
    if isinstance(expected, Tensor) != isinstance(state, Tensor) or (
        not isinstance(state, Tensor)
        and (not isinstance(state, tuple) or len(state) != len(expected))
    ):
        kind = "a Tensor" if isinstance(expected, Tensor) else f"a tuple of {len(expected)} Tensors"
        raise StateTypeError(f"Expected the state to be {kind}, got {type(state).__name__}")

    want = 2 if unbatched else 3
    layout = "unbatched 2-D" if unbatched else "batched 3-D"
    parts = (state,) if isinstance(state, Tensor) else state
    for part in parts:
        if not isinstance(part, Tensor):
            raise ArgumentTypeError(f"state must be a Tensor, got {type(part).__name__}")
    if not isinstance(state, Tensor) and any(part.dim() != want for part in state):
        # nn.LSTM's wording for (h, c): both dimensions in one message
        dims = ", ".join(f"{part.dim()}-D" for part in state)
        raise ShapeError(
            f"For {layout} input, hx and cx should also be {want}-D but got ({dims}) tensors"
        )
    index = iter(range(len(parts)))

    def check(s: Tensor, e: Tensor) -> Tensor:
        i = next(index)
        if s.dim() != want:
            raise ShapeError(
                f"For {layout} input, hx should also be {want}-D but got {s.dim()}-D tensor"
            )
        s = s.unsqueeze(1) if unbatched else s
        if s.shape != e.shape:
            shape = tuple(e.shape[:1] + e.shape[2:]) if unbatched else tuple(e.shape)
            got = list(s.shape[:1] + s.shape[2:]) if unbatched else list(s.shape)
            # nn.LSTM's wording: hidden[0] is h, hidden[1] is c
            which = "hidden" if isinstance(state, Tensor) else f"hidden[{i}]"
            raise ShapeError(f"Expected {which} size {shape}, got {got}")
        if s.dtype != e.dtype:
            raise ShapeError(f"hx dtype must match the input: expected {e.dtype}, got {s.dtype}")
        if s.device != e.device:
            raise ShapeError(
                f"hx must be on the input's device: expected {e.device}, got {s.device}"
            )
        return s

    return map_state(check, state, expected)


def restore_state(state: State, prep: PreparedInput) -> State:
    return map_state(lambda s: s.squeeze(1), state) if prep.unbatched else state
