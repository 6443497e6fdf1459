"""Recurrent state and the functions that map over it.

A cell's state is one tensor ``(N, H)`` (Elman, GRU) or a tuple of tensors (LSTM's
``(h, c)``). A layer's state follows ``torch.nn.RNN``'s layout: ``(S, N, H)`` (or a tuple of
those), where ``S`` is the number of *state slots* the layer owns -- 1 for one direction, 2
for a bidirectional layer, the sum over the layers of a stack, in nn.RNN's order (layer 0
forward, layer 0 backward, layer 1 forward, ...).

Truncated back-propagation through time runs one long stream in k-step chunks with the
state carried forward *detached*: the forward values are those of one pass over the whole
stream, but gradients stop at chunk boundaries::

    state = None
    for chunk in split_chunks(stream, k):                # (k, N, F) each
        output, state = rnn(chunk, state)
        loss = criterion(output, targets_for(chunk))
        loss.backward(); optimizer.step(); optimizer.zero_grad()
        state = detach_state(state)                      # keep the value, cut the graph
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

#: A state: one tensor, or a tuple of tensors (LSTM's ``(h, c)``).
State = Tensor | tuple[Tensor, ...]


def map_state(fn: Callable[..., Tensor], *states: State) -> State:
    """Apply ``fn`` to a state's tensors (a tensor, or each element of a tuple state).

    With several states, ``fn`` receives their matching tensors together::

        >>> import torch
        >>> map_state(torch.add, (torch.ones(1), torch.zeros(1)), (torch.ones(1), torch.ones(1)))
        (tensor([2.]), tensor([1.]))
    """
    if isinstance(states[0], Tensor):
        return fn(*states)
    return tuple(fn(*parts) for parts in zip(*states, strict=True))


def detach_state(state: State | None) -> State | None:
    """The same state, cut from the graph that produced it (tensor or tuple of tensors)."""
    if state is None:
        return None
    return map_state(lambda s: s.detach(), state)


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


def split_chunks(stream: Tensor, k: int, dim: int = 0) -> Iterator[Tensor]:
    """Consecutive chunks of ``k`` steps along ``dim`` (time); the last may be shorter."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"chunk length k must be a positive integer, got {k!r}")
    yield from stream.split(k, dim=dim)
