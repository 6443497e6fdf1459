"""Choosing the next token from logits: greedy, or sampling with temperature and top-k."""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

STRATEGIES = ("greedy", "sample")


def check_sampling(
    strategy: str = "greedy",
    temperature: float = 1.0,
    top_k: int | None = None,
    max_new_tokens: int | None = None,
) -> None:
    """Refuse settings that would sample garbage or silently do nothing, with the value.

    ``temperature`` must be a finite number >= 0 (``nan`` would make every probability
    ``nan``; ``inf`` a uniform draw that ignores the model), ``top_k`` a positive integer or
    ``None``, ``max_new_tokens`` an integer >= 0.

    Example::

        >>> check_sampling("sample", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: temperature must be a finite number >= 0 (0: greedy), got nan
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise ValueError(
            f"temperature must be a finite number >= 0 (0: greedy), got {temperature!r}"
        )
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1
    ):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if max_new_tokens is not None and (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, numbers.Integral)
        or max_new_tokens < 0
    ):
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")


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
    check_sampling(strategy, temperature, top_k)
    if strategy == "greedy" or temperature == 0:
        return logits.argmax(-1)
    # float64: logits / a tiny temperature must not overflow to inf - inf = nan.
    scaled = logits.double() / temperature  # (N, V)
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]  # (N, 1)
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
