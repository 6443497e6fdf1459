"""Contiguous token streams for language modelling with truncated BPTT.

Layout (document boundaries always at a chunk start). Each document ``d`` becomes
``s = [BOS] + d + [EOS]``; its inputs are ``s[:-1]`` and its next-token targets
``s[1:]``. Inputs/targets are cut into chunks of ``k`` steps; a document's last
chunk is padded (inputs with ``pad_id``, targets with -100) and its ``length`` is
the number of real steps. The chunk sequence of all documents (in order) is then
cut into ``N`` contiguous rows (classic "batchify", at chunk granularity); batch
``b`` holds chunk ``b`` of every row, so row ``n`` of consecutive batches continues
stream ``n``. ``reset[n]`` is true in the first batch and wherever row ``n``'s chunk
starts a new document. The last ``C mod N`` chunks (fewer than one batch) are left
out, and how many tokens that is gets logged.

Under DDP, rank ``r`` of ``W`` takes rows ``r·N .. (r+1)·N - 1`` of ``W·N`` rows; run
the Trainer with ``use_distributed_sampler=False`` so that Lightning keeps the order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from seqmodels.core import IGNORE_INDEX

log = logging.getLogger("seqmodels.data")


class StreamBatches(Dataset):
    """Pre-cut LM batches: item ``b`` is the dict of batch ``b`` (use ``batch_size=None``).

    Example:
        >>> streams = StreamBatches.from_documents([[5, 6, 7, 8], [9, 10]], batch_size=2,
        ...                                        chunk_length=3, bos_id=2, eos_id=3)
        >>> b = streams[0]
        >>> b["inputs"].tolist(), b["targets"].tolist(), b["reset"].tolist()
        ([[2, 5, 6], [7, 8, 0]], [[5, 6, 7], [8, 3, -100]], [True, True])
        >>> len(streams), b["lengths"].tolist(), streams.dropped_tokens
        (1, [3, 2], 3)
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        lengths: torch.Tensor,
        reset: torch.Tensor,
        dropped_tokens: int = 0,
    ) -> None:
        self.inputs = inputs  # (B, N, k)
        self.targets = targets  # (B, N, k)
        self.lengths = lengths  # (B, N)
        self.reset = reset  # (B, N)
        self.dropped_tokens = dropped_tokens

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Sequence[int]],
        batch_size: int,
        chunk_length: int,
        *,
        bos_id: int,
        eos_id: int,
        pad_id: int = 0,
        rank: int = 0,
        world_size: int = 1,
        name: str = "stream",
    ) -> StreamBatches:
        """Lay ``documents`` (lists of token ids) out as described in this module."""
        if batch_size < 1 or chunk_length < 1:
            raise ValueError("batch_size and chunk_length must be >= 1")
        chunks_in, chunks_out, starts = [], [], []
        for doc in documents:
            s = torch.tensor([bos_id, *doc, eos_id], dtype=torch.long)
            x, y = s[:-1], s[1:]
            n_chunks = -(-x.numel() // chunk_length)
            pad = n_chunks * chunk_length - x.numel()
            x = torch.cat([x, torch.full((pad,), pad_id, dtype=torch.long)])
            y = torch.cat([y, torch.full((pad,), IGNORE_INDEX, dtype=torch.long)])
            chunks_in.append(x.view(n_chunks, chunk_length))
            chunks_out.append(y.view(n_chunks, chunk_length))
            first = torch.zeros(n_chunks, dtype=torch.bool)
            first[0] = True
            starts.append(first)
        if not chunks_in:
            raise ValueError(f"{name}: no documents to lay out")
        x_all, y_all = torch.cat(chunks_in), torch.cat(chunks_out)  # (C, k)
        start_all = torch.cat(starts)  # (C,)
        rows = batch_size * world_size
        per_row = x_all.shape[0] // rows
        if per_row == 0:
            raise ValueError(
                f"{name}: {x_all.shape[0]} chunks of {chunk_length} tokens cannot fill "
                f"{rows} rows; use a smaller batch_size or max_length"
            )
        used = rows * per_row
        dropped = int((y_all[used:] != IGNORE_INDEX).sum())
        if dropped:
            log.info("%s: left out the last %d tokens (less than one batch)", name, dropped)
        sl = slice(rank * batch_size, (rank + 1) * batch_size)

        def lay(t: torch.Tensor) -> torch.Tensor:  # (C, ...) -> (per_row, N, ...)
            t = t[:used].view(rows, per_row, *t.shape[1:])[sl]
            return t.transpose(0, 1).contiguous()

        inputs, targets, reset = lay(x_all), lay(y_all), lay(start_all)
        reset[0] = True
        lengths = (targets != IGNORE_INDEX).sum(-1)  # (B, N)
        return cls(inputs, targets, lengths, reset, dropped)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        return {
            "inputs": self.inputs[b],  # (N, k)
            "targets": self.targets[b],  # (N, k)
            "lengths": self.lengths[b],  # (N,)
            "reset": self.reset[b],  # (N,)
        }

    @property
    def num_tokens(self) -> int:
        """Number of real (non-padding) target tokens in all batches."""
        return int(self.lengths.sum())
