"""Sequence reversal and sorting: synthetic encoder-decoder benchmarks."""

from __future__ import annotations

import torch

from seqmodels.data.base import SequenceDataModule
from seqmodels.data.splits import make_generator
from seqmodels.data.vocab import Vocabulary

TASKS = ("reverse", "sort")


def transform(symbols: torch.Tensor, task: str) -> torch.Tensor:
    """The target of ``symbols`` ``(L,)``: reversed or sorted ascending."""
    if task == "reverse":
        return symbols.flip(0)
    if task == "sort":
        return symbols.sort(stable=True).values
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def symbol_sequences(
    n: int, n_symbols: int, min_len: int, max_len: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """``n`` sequences of symbols ``0..n_symbols-1`` with lengths uniform in [min_len, max_len]."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator).tolist()
    flat = torch.randint(0, n_symbols, (sum(lengths),), generator=generator)
    return list(flat.split(lengths))


class SequenceTransformDataModule(SequenceDataModule):
    """Reverse or sort a random symbol sequence (encoder-decoder).

    Source and target share one :class:`Vocabulary` of the symbols ``"0"``, ``"1"``, ...
    (``vocab is target_vocab``). Batches: ``source (N, S)``, ``source_lengths``,
    ``target (N, U)`` = BOS + transformed source + EOS, ``target_lengths = S + 2``.

    Example:
        >>> dm = SequenceTransformDataModule("reverse", n_train=8, n_val=4, n_test=4,
        ...                                  min_len=2, max_len=4, batch_size=2)
        >>> dm.setup()
        >>> ex = dm.splits["train"][0]
        >>> dm.vocab.decode(ex["target"]) == dm.vocab.decode(ex["source"])[::-1]
        True
    """

    kind = "seq2seq"

    def __init__(
        self,
        task: str = "reverse",
        n_symbols: int = 10,
        min_len: int = 5,
        max_len: int = 20,
        n_train: int = 10_000,
        n_val: int = 1_000,
        n_test: int = 1_000,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        max_length: int | None = None,
        truncate: bool = False,
        sort_by_length: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, seed, max_length, truncate, sort_by_length)
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        self.task, self.n_symbols = task, n_symbols
        self.min_len, self.max_len = min_len, max_len
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.vocab = Vocabulary([str(i) for i in range(n_symbols)], level="whitespace")
        self.target_vocab = self.vocab

    def build(self) -> None:
        offset_ids = len(self.vocab) - self.n_symbols  # ids of symbol 0
        bos = torch.tensor([self.vocab.bos_id])
        eos = torch.tensor([self.vocab.eos_id])
        for offset, (split, n) in enumerate(self.sizes.items()):
            gen = make_generator(self.seed * 3 + offset)
            seqs = symbol_sequences(n, self.n_symbols, self.min_len, self.max_len, gen)
            self.splits[split] = [
                {
                    "source": s + offset_ids,
                    "target": torch.cat([bos, transform(s, self.task) + offset_ids, eos]),
                    "index": i,
                }
                for i, s in enumerate(seqs)
            ]
