"""Choosing the next token from logits: greedy, or sampling with temperature and top-k."""

from __future__ import annotations

import torch
from torch import Tensor

STRATEGIES = ("greedy", "sample")


def next_token(
    logits: Tensor,
    strategy: str = "greedy",
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick one token per row of ``logits`` ``(N, V)`` -> ``(N,)``.

    ``"sample"`` draws from ``softmax(logits / temperature)`` restricted to the ``top_k``
    highest logits (all when ``None``). ``temperature=0`` is the limit: greedy.

    Example::

        >>> import torch
        >>> logits = torch.tensor([[0.0, 5.0, 1.0]])
        >>> next_token(logits).tolist()
        [1]
        >>> g = torch.Generator().manual_seed(0)
        >>> next_token(logits, "sample", top_k=1, generator=g).tolist()
        [1]
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if top_k is not None and not 1 <= top_k:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if strategy == "greedy" or temperature == 0:
        return logits.argmax(-1)
    # float64: logits / a tiny temperature must not overflow to inf - inf = nan.
    scaled = logits.double() / temperature  # (N, V)
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]  # (N, 1)
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
