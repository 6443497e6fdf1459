"""Sequence plumbing shared by every layer: input formats, lengths, masks, reversal, states.

Internally every layer works on one layout: time-major ``x`` of shape ``(T, N, F)`` plus
optional per-sequence :class:`Lengths`. This module converts the public formats
(batch-first, unbatched, ``PackedSequence``, padded + lengths) to that layout and back.

States follow ``torch.nn.RNN``'s convention: a layer's state is a tensor of shape
``(S, N, H)`` (or a tuple of such tensors for cells whose state is a tuple), where ``S`` is
the number of *state slots* the layer owns: 1 for a one-directional layer, 2 for a
bidirectional one, ``sum`` over the layers of a stack, in nn.RNN's order
(layer 0 forward, layer 0 backward, layer 1 forward, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqmodels.cells.base import State


@dataclass(frozen=True)
class Lengths:
    """Per-sequence lengths of a padded time-major batch.

    ``values`` is an int64 tensor ``(N,)`` on the data's device; ``min``/``max`` are cached
    as Python ints so the time loop never synchronises with the device.
    """

    values: Tensor
    min: int
    max: int

    def mask(self, steps: int) -> Tensor:
        """Boolean ``(T, N)``: True where step t is a real step of sequence n."""
        t = torch.arange(steps, device=self.values.device)
        return t.unsqueeze(1) < self.values.unsqueeze(0)


def make_lengths(lengths: Sequence[int] | Tensor, batch_size: int, steps: int, device) -> Lengths:
    """Validate user lengths against a ``(T, N, ...)`` batch; errors name expected and actual."""
    values = torch.as_tensor(lengths)
    if values.dim() != 1 or values.shape[0] != batch_size:
        raise ValueError(
            f"lengths must have one entry per sequence: expected shape ({batch_size},), "
            f"got {tuple(values.shape)}"
        )
    if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got dtype {values.dtype}")
    values = values.to(dtype=torch.int64)
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
    return Lengths(values.to(device), lo, hi)


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
        lengths_obj = _as_lengths(lens.to(x.device), x.shape[0])
    else:
        if not isinstance(input, Tensor):
            raise ValueError(
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
            raise ValueError(
                f"input must be 3-D {layout} or unbatched 2-D (T, F), "
                f"got shape {tuple(input.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"input has no time steps: shape {tuple(input.shape)}")
        lengths_obj = None
        if lengths is not None:
            lengths_obj = make_lengths(lengths, x.shape[1], x.shape[0], x.device)
            if lengths_obj.min == x.shape[0]:  # every sequence is full: no mask needed
                lengths_obj = None
    if not x.dtype.is_floating_point:
        raise ValueError(f"input must be a floating-point tensor, got dtype {x.dtype}")
    if input_size is not None and x.shape[-1] != input_size:
        raise ValueError(
            f"input.size(-1) must be equal to input_size. Expected {input_size}, got {x.shape[-1]}"
        )
    return PreparedInput(x, lengths_obj, packed, unbatched, batch_first)


def _as_lengths(values: Tensor, steps: int) -> Lengths | None:
    lo, hi = int(values.min()), int(values.max())
    if lo == steps:  # every sequence is full: the fast path needs no mask
        return None
    return Lengths(values, lo, hi)


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


def reverse_padded(x: Tensor, lengths: Lengths | None) -> Tensor:
    """Reverse each sequence within its own length: ``y[t, n] = x[L_n - 1 - t, n]`` for t < L_n.

    Padded steps stay where they are, so the backward direction starts at each sequence's
    own last real step. The map is its own inverse.
    """
    if lengths is None:
        return x.flip(0)
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device).unsqueeze(1)  # (T, 1)
    last = lengths.values.unsqueeze(0) - 1  # (1, N)
    index = torch.where(t <= last, last - t, t)  # (T, N)
    index = index.view(steps, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


# --- states ---------------------------------------------------------------------------------


def map_state(fn: Callable[..., Tensor], *states: State) -> State:
    """Apply ``fn`` to a state's tensors (a tensor, or each element of a tuple state)."""
    if isinstance(states[0], Tensor):
        return fn(*states)
    return tuple(fn(*parts) for parts in zip(*states, strict=True))


def split_state(state: State | None, slots: Sequence[int]) -> list[State | None]:
    """Split a ``(sum(slots), N, H)`` state into per-layer states of ``slots[i]`` slots each."""
    if state is None:
        return [None] * len(slots)
    if isinstance(state, Tensor):
        return list(state.split(list(slots), dim=0))
    parts = [s.split(list(slots), dim=0) for s in state]
    return [tuple(p[i] for p in parts) for i in range(len(slots))]


def cat_states(states: Sequence[State]) -> State:
    """Concatenate per-layer states along the slot axis (nn.RNN's ``h_n`` layout)."""
    try:
        if isinstance(states[0], Tensor):
            return torch.cat(list(states), dim=0)
        return tuple(torch.cat(list(parts), dim=0) for parts in zip(*states, strict=True))
    except RuntimeError as err:
        shapes = [
            tuple(s.shape) if isinstance(s, Tensor) else [tuple(p.shape) for p in s] for s in states
        ]
        raise ValueError(
            f"final states of the composed layers cannot be concatenated (shapes {shapes}); "
            "compose layers whose states have the same size"
        ) from err


def check_state(state: State, slots: int, batch_size: int, unbatched: bool) -> State:
    """Validate a user's initial state ``(S, N, ...)`` (unbatched ``(S, ...)``) and add ``N``."""

    def check(s: Tensor) -> Tensor:
        if not isinstance(s, Tensor):
            raise ValueError(
                f"state must be a Tensor or a tuple of Tensors, got {type(s).__name__}"
            )
        if unbatched:
            s = s.unsqueeze(1)
        if s.dim() < 3 or s.shape[0] != slots or s.shape[1] != batch_size:
            expected = f"({slots}, ...)" if unbatched else f"({slots}, {batch_size}, ...)"
            got = tuple(s.shape[:1] + s.shape[2:]) if unbatched else tuple(s.shape)
            raise ValueError(f"Expected state of shape {expected}, got {got}")
        return s

    return map_state(check, state)


def restore_state(state: State, prep: PreparedInput) -> State:
    return map_state(lambda s: s.squeeze(1), state) if prep.unbatched else state
