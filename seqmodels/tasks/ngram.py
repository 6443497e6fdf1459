"""The add-k smoothed n-gram baseline, and a callback that reports it next to the RNN.

Counting is vectorised: every n-gram of a stream becomes one integer code (the context is
padded on the left with a start symbol ``V``), counted with ``torch.unique``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import lightning as L
import torch
from torch import Tensor


class NGramLM:
    """Add-k smoothed n-gram language model over token ids ``0..vocab_size-1``.

    ``p(w | c) = (count(c, w) + k) / (count(c) + k * V)`` with the ``order - 1`` previous
    tokens as context ``c`` (a start symbol before a stream's first token).

    Example::

        >>> import torch
        >>> lm = NGramLM(vocab_size=3, order=2, k=1.0).fit([torch.tensor([0, 1, 0, 1, 0])])
        >>> round(lm.perplexity([torch.tensor([0, 1, 0])]), 3)
        1.667
    """

    def __init__(self, vocab_size: int, order: int = 3, k: float = 1.0) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order!r}")
        if k <= 0:
            raise ValueError(f"k must be > 0 (add-k smoothing), got {k!r}")
        self.vocab_size, self.order, self.k = vocab_size, order, k
        self._base = vocab_size + 1  # token ids plus the start symbol
        self._grams = (torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long))
        self._contexts = (torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long))

    def _codes(self, stream: Tensor) -> tuple[Tensor, Tensor]:
        """Codes of (context, context + next token) for every predicted token of a stream."""
        stream = torch.as_tensor(stream, dtype=torch.long).flatten().cpu()
        if stream.numel() and (stream.min() < 0 or stream.max() >= self.vocab_size):
            raise ValueError(f"stream holds ids outside the n-gram vocabulary of {self.vocab_size}")
        start = torch.full((self.order - 1,), self.vocab_size, dtype=torch.long)
        padded = torch.cat([start, stream])
        context = torch.zeros(stream.numel() - 1, dtype=torch.long)
        for i in range(self.order - 1):  # the i-th token of each context window
            context = context * self._base + padded[1 + i : 1 + i + stream.numel() - 1]
        return context, context * self._base + stream[1:]

    def fit(self, streams: Iterable[Tensor]) -> NGramLM:
        """Count n-grams in ``streams`` (1-D id tensors); returns ``self``."""
        contexts, grams = [], []
        for stream in streams:
            if len(stream) > 1:
                c, g = self._codes(stream)
                contexts.append(c)
                grams.append(g)
        if grams:
            self._contexts = torch.unique(torch.cat(contexts), return_counts=True)
            self._grams = torch.unique(torch.cat(grams), return_counts=True)
        return self

    @staticmethod
    def _lookup(table: tuple[Tensor, Tensor], codes: Tensor) -> Tensor:
        keys, counts = table
        if keys.numel() == 0:
            return torch.zeros_like(codes, dtype=torch.float64)
        pos = torch.searchsorted(keys, codes).clamp(max=keys.numel() - 1)
        return torch.where(keys[pos] == codes, counts[pos], 0).double()

    def cross_entropy(self, streams: Iterable[Tensor]) -> float:
        """Mean negative log-likelihood (nats per predicted token) over ``streams``."""
        total, count = 0.0, 0
        for stream in streams:
            if len(stream) < 2:
                continue
            context, gram = self._codes(stream)
            num = self._lookup(self._grams, gram) + self.k
            den = self._lookup(self._contexts, context) + self.k * self.vocab_size
            total -= float(torch.log(num / den).sum())
            count += gram.numel()
        if count == 0:
            raise ValueError("no tokens to evaluate: every stream is shorter than two tokens")
        return total / count

    def perplexity(self, streams: Iterable[Tensor]) -> float:
        return math.exp(self.cross_entropy(streams))


def streams_from_batches(batches: Iterable[dict]) -> list[Tensor]:
    """Reassemble the token streams that language-model chunk batches cut into rows.

    Row n of consecutive batches continues stream n until ``reset`` starts a new one; a
    stream is the chunks' inputs followed by the last chunk's final target.
    """
    finished: list[Tensor] = []
    open_rows: dict[int, list[Tensor]] = {}
    last_target: dict[int, Tensor] = {}

    def close(row: int) -> None:
        if open_rows.get(row):
            finished.append(torch.cat(open_rows[row] + [last_target[row].view(1)]))
        open_rows[row] = []

    for batch in batches:
        inputs, targets = batch["inputs"].cpu(), batch["targets"].cpu()
        lengths = batch["lengths"].cpu()
        reset = batch.get("reset")
        reset = torch.zeros(len(inputs), dtype=torch.bool) if reset is None else reset.cpu()
        for row in range(len(inputs)):
            if reset[row] or row not in open_rows:
                close(row)
            n = int(lengths[row])
            if n > 0:
                open_rows[row].append(inputs[row, :n])
                last_target[row] = targets[row, n - 1]
    for row in list(open_rows):
        close(row)
    return finished


class NGramBaseline(L.Callback):
    """Logs ``val/ngram_perplexity`` (and ``val/ngram_bpc``) next to a language model's.

    The n-gram model is fitted once on the training loader's streams and scored on the
    validation loader's streams: the same split the RNN is validated on.

    Example::

        >>> cb = NGramBaseline(order=3, k=0.1)   # Trainer(callbacks=[cb])
    """

    def __init__(self, order: int = 3, k: float = 1.0) -> None:
        self.order, self.k = order, k
        self.cross_entropy: float | None = None

    def _loaders(self, trainer: L.Trainer) -> tuple[Iterable | None, Iterable | None]:
        train, val = trainer.train_dataloader, trainer.val_dataloaders
        datamodule = trainer.datamodule
        if train is None and datamodule is not None:
            train = datamodule.train_dataloader()
        if isinstance(val, (list, tuple)):
            val = val[0] if val else None
        return train, val

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.cross_entropy is None:
            train, val = self._loaders(trainer)
            if train is None or val is None:
                return
            lm = NGramLM(pl_module.hparams.vocab_size, self.order, self.k)
            lm.fit(streams_from_batches(train))
            self.cross_entropy = lm.cross_entropy(streams_from_batches(val))
        ce = torch.tensor(self.cross_entropy)
        pl_module.log("val/ngram_perplexity", ce.exp(), on_epoch=True, sync_dist=True)
        pl_module.log("val/ngram_bpc", ce / math.log(2), on_epoch=True, sync_dist=True)
