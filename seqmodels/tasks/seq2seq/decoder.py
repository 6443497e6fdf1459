"""The autoregressive decoder: a seqmodels cell, one token at a time, with optional attention,
and the bridge that turns the encoder's final states into the decoder's initial state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqmodels.cells import RecurrentCell
from seqmodels.tasks.seq2seq.attention import Attention, Memory

BRIDGES = ("linear", "zeros")


def hidden_of(state: Any) -> Tensor:
    """The hidden part of a cell state (the first element of a tuple state)."""
    return state[0] if isinstance(state, tuple) else state


class Bridge(nn.Module):
    """Encoder's last-layer final states ``(N, D * H_enc)`` -> decoder's initial state.

    ``"linear"``: ``tanh(W h_enc + b)``; ``"zeros"``: the cell's own initial state (the
    decoder then learns everything through attention). For a tuple-state cell only the
    hidden part is bridged; the rest starts from the cell's initial state.
    """

    def __init__(self, kind: str, encoder_size: int, decoder_size: int) -> None:
        super().__init__()
        if kind not in BRIDGES:
            raise ValueError(f"bridge must be one of {', '.join(BRIDGES)}, got {kind!r}")
        self.kind = kind
        self.linear = nn.Linear(encoder_size, decoder_size) if kind == "linear" else None

    def forward(self, encoder_final: Tensor, cell: RecurrentCell) -> Any:
        initial = cell.initial_state(encoder_final.shape[0], like=encoder_final)
        if self.linear is None:
            return initial
        if encoder_final.shape[-1] != self.linear.in_features:
            raise ValueError(
                f"the bridge expects encoder final states of width {self.linear.in_features}, "
                f"got {encoder_final.shape[-1]}"
            )
        h = torch.tanh(self.linear(encoder_final))  # (N, H_dec)
        return (h, *initial[1:]) if isinstance(initial, tuple) else h


class Decoder(nn.Module):
    """Embeds the previous token, attends (optionally), runs one cell step, predicts the next.

    ``cell`` is any :class:`~seqmodels.RecurrentCell` whose ``input_size`` is
    ``embedding_dim`` (+ ``memory_size`` with attention: the context is fed with the token),
    or a factory ``input_size -> cell`` that builds one of the right size.
    """

    def __init__(
        self,
        cell: RecurrentCell | Callable[[int], RecurrentCell],
        vocab_size: int,
        embedding_dim: int,
        memory_size: int,
        attention: str | None = None,
        attention_size: int | None = None,
        pad_id: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        input_size = embedding_dim + (memory_size if attention else 0)
        if not isinstance(cell, nn.Module):
            cell = cell(input_size)
        if getattr(cell, "input_size", input_size) != input_size:
            extra = f" + {memory_size} (attention context)" if attention else ""
            raise ValueError(
                f"decoder cell takes input_size={cell.input_size} but the decoder feeds it "
                f"{embedding_dim} (target embedding){extra} = {input_size}"
            )
        self.cell = cell
        self.hidden_size = cell.hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.attention = (
            Attention(attention, cell.hidden_size, memory_size, attention_size)
            if attention
            else None
        )
        self.dropout = nn.Dropout(dropout)
        features = cell.output_size + (memory_size if attention else 0)
        self.out = nn.Linear(features, vocab_size)

    def prepare(self, outputs: Tensor, mask: Tensor) -> Memory | None:
        return self.attention.prepare(outputs, mask) if self.attention is not None else None

    def step(self, tokens: Tensor, state: Any, memory: Memory | None) -> tuple[Tensor, Any]:
        """One step: previous tokens ``(N,)`` -> next-token logits ``(N, V)``, new state."""
        x = self.dropout(self.embedding(tokens))  # (N, E)
        context = None
        if self.attention is not None:
            context, _ = self.attention(hidden_of(state), memory)  # (N, H_enc)
            x = torch.cat([x, context], dim=-1)
        output, state = self.cell(x, state)  # (N, H_dec)
        if context is not None:
            output = torch.cat([output, context], dim=-1)
        return self.out(self.dropout(output)), state

    def log_prob_step(
        self, tokens: Tensor, state: Any, memory: Memory | None
    ) -> tuple[Tensor, Any]:
        logits, state = self.step(tokens, state, memory)
        return F.log_softmax(logits.float(), dim=-1), state
