"""Decoding: greedy search and batched beam search with length normalisation.

Both drive any ``step(tokens (M,), state, memory) -> (log_probs (M, V), state)`` and
return ``(N, L)`` token ids without the BOS, with every position after a sequence's EOS
filled with ``pad_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from seqmodels.core import map_state
from seqmodels.tasks.seq2seq.attention import Memory

StepFn = Callable[[Tensor, Any, "Memory | None"], tuple[Tensor, Any]]


def select_state(state: Any, index: Tensor) -> Any:
    """Rows ``index`` of a ``(N, H)`` state or a tuple of them."""
    return map_state(lambda s: s.index_select(0, index), state)


@torch.no_grad()
def greedy_search(
    step: StepFn,
    state: Any,
    memory: Memory | None,
    batch_size: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_length: int,
    device: torch.device,
) -> Tensor:
    """Feed back the most likely token until every sequence emitted EOS or ``max_length``."""
    tokens = torch.full((batch_size,), bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_length):
        log_probs, state = step(tokens, state, memory)  # (N, V)
        tokens = log_probs.argmax(-1).masked_fill(finished, pad_id)
        out.append(tokens)
        finished = finished | (tokens == eos_id)
        if bool(finished.all()):
            break
    return torch.stack(out, 1)  # (N, L)


@torch.no_grad()
def beam_search(
    step: StepFn,
    state: Any,
    memory: Memory | None,
    batch_size: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_length: int,
    device: torch.device,
    beam_width: int = 4,
    length_penalty: float = 0.0,
) -> Tensor:
    """Keep the ``beam_width`` best partial sequences per input; return the best finished one.

    A beam that emitted EOS is frozen: it may only continue with ``pad_id`` at no cost, so it
    keeps its score while the others grow. Hypotheses are ranked at the end by
    ``score / length ** length_penalty`` (0: raw log-probability; 1: per-token average).
    With ``beam_width=1`` this is exactly greedy search.
    """
    n, b = batch_size, beam_width
    rows = torch.arange(n, device=device).repeat_interleave(b)  # (N*B,)
    state = select_state(state, rows)
    memory = None if memory is None else memory.select(rows)
    tokens = torch.full((n * b,), bos_id, dtype=torch.long, device=device)
    scores = torch.full((n, b), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    finished = torch.zeros(n, b, dtype=torch.bool, device=device)
    lengths = torch.zeros(n, b, device=device)
    history = torch.empty(n, b, 0, dtype=torch.long, device=device)
    for t in range(max_length):
        log_probs, state = step(tokens, state, memory)
        vocab = log_probs.shape[-1]
        log_probs = log_probs.view(n, b, vocab).to(scores.dtype)
        frozen = torch.full_like(log_probs[0, 0], float("-inf"))
        frozen[pad_id] = 0.0
        log_probs = torch.where(finished.unsqueeze(-1), frozen, log_probs)
        candidates = (scores.unsqueeze(-1) + log_probs).view(n, b * vocab)
        scores, index = candidates.topk(b, dim=-1)  # (N, B)
        beam, tok = index // vocab, index % vocab
        history = torch.cat(
            [history.gather(1, beam.unsqueeze(-1).expand(-1, -1, t)), tok.unsqueeze(-1)], -1
        )
        finished = finished.gather(1, beam)
        lengths = lengths.gather(1, beam) + (~finished).to(lengths.dtype)
        finished = finished | (tok == eos_id)
        flat = (beam + torch.arange(n, device=device).unsqueeze(1) * b).view(-1)
        state = select_state(state, flat)
        tokens = tok.view(-1)
        if bool(finished.all()):
            break
    ranked = scores / lengths.clamp(min=1) ** length_penalty if length_penalty else scores
    best = ranked.argmax(-1)  # (N,)
    return history[torch.arange(n, device=device), best]  # (N, L)
