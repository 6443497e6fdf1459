"""Attention over encoder outputs (dot, general, additive), masked over padding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

ATTENTIONS = ("dot", "general", "additive")


@dataclass
class Memory:
    """What the decoder attends to: encoder ``outputs`` ``(N, S, H)``, real-step ``mask``
    ``(N, S)`` and, for additive attention, the keys' projection computed once ``(N, S, A)``."""

    outputs: Tensor
    mask: Tensor
    keys: Tensor | None = None

    def select(self, index: Tensor) -> Memory:
        """Rows ``index`` (to follow reordered beams)."""
        keys = None if self.keys is None else self.keys.index_select(0, index)
        return Memory(self.outputs.index_select(0, index), self.mask.index_select(0, index), keys)


class Attention(nn.Module):
    """Scores a decoder query against every real encoder step; returns the context vector.

    * ``"dot"``: ``score = k · q`` (needs ``query_size == key_size``);
    * ``"general"``: ``score = k · W q`` (Luong);
    * ``"additive"``: ``score = v · tanh(W_q q + W_k k)`` (Bahdanau).

    Padded steps get weight exactly 0 (their scores are ``-inf`` before the softmax).

    Example::

        >>> import torch
        >>> att = Attention("additive", query_size=8, key_size=6)
        >>> mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]).bool()  # (N, S)
        >>> memory = att.prepare(torch.randn(2, 5, 6), mask)
        >>> context, weights = att(torch.randn(2, 8), memory)
        >>> context.shape, float(weights[1, 2:].sum())
        (torch.Size([2, 6]), 0.0)
    """

    def __init__(
        self, kind: str, query_size: int, key_size: int, attention_size: int | None = None
    ) -> None:
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {kind!r}")
        if kind == "dot" and query_size != key_size:
            raise ValueError(
                f"dot attention needs the decoder's hidden size ({query_size}) to equal the "
                f"encoder's output size ({key_size}); use 'general' or 'additive' otherwise"
            )
        self.kind = kind
        if kind == "general":
            self.query_proj = nn.Linear(query_size, key_size, bias=False)
        elif kind == "additive":
            size = attention_size or key_size
            self.query_proj = nn.Linear(query_size, size, bias=False)
            self.key_proj = nn.Linear(key_size, size)
            self.v = nn.Linear(size, 1, bias=False)

    def prepare(self, outputs: Tensor, mask: Tensor) -> Memory:
        """Precompute what does not depend on the query (the additive keys)."""
        keys = self.key_proj(outputs) if self.kind == "additive" else None  # (N, S, A)
        return Memory(outputs, mask, keys)

    def forward(self, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """``query`` ``(N, Hq)`` -> context ``(N, Hk)`` and weights ``(N, S)``."""
        if self.kind == "additive":
            hidden = torch.tanh(memory.keys + self.query_proj(query).unsqueeze(1))  # (N, S, A)
            scores = self.v(hidden).squeeze(-1)  # (N, S)
        else:
            q = self.query_proj(query) if self.kind == "general" else query  # (N, Hk)
            scores = torch.bmm(memory.outputs, q.unsqueeze(-1)).squeeze(-1)  # (N, S)
        scores = scores.masked_fill(~memory.mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (N, S)
        context = torch.bmm(weights.unsqueeze(1), memory.outputs).squeeze(1)  # (N, Hk)
        return context, weights
