"""Truncated back-propagation through time: run one long stream in k-step chunks.

Every layer returns its final state and accepts an initial one, so a stream is processed
chunk by chunk with the state carried forward *detached*: the forward values are exactly
those of one pass over the whole stream, but gradients stop at chunk boundaries (each
backward pass costs k steps, not the whole history)::

    state = None
    for chunk in split_chunks(stream, k):                # (k, N, F) each
        output, state = rnn(chunk, state)
        loss = criterion(output, targets_for(chunk))
        loss.backward(); optimizer.step(); optimizer.zero_grad()
        state = detach_state(state)                      # keep the value, cut the graph
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor

from seqmodels.cells.base import State
from seqmodels.layers.sequence import map_state


def detach_state(state: State | None) -> State | None:
    """The same state, cut from the graph that produced it (tensor or tuple of tensors)."""
    if state is None:
        return None
    return map_state(lambda s: s.detach(), state)


def split_chunks(stream: Tensor, k: int, dim: int = 0) -> Iterator[Tensor]:
    """Consecutive chunks of ``k`` steps along ``dim`` (time); the last may be shorter."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"chunk length k must be a positive integer, got {k!r}")
    yield from stream.split(k, dim=dim)
