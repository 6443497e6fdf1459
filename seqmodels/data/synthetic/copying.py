"""The copying-memory task (Hochreiter & Schmidhuber, 1997; Arjovsky et al., 2016)."""

from __future__ import annotations

import torch

from seqmodels.data.base import SequenceDataModule
from seqmodels.data.splits import make_generator
from seqmodels.data.vocab import Labels, Vocabulary

BLANK, DELIMITER = "_", ":"


def copy_memory(
    n: int,
    delay: int,
    n_symbols: int = 10,
    n_categories: int = 8,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` copying-memory sequences of ``delay + 2·n_symbols`` steps.

    Input: ``n_symbols`` symbols drawn from categories ``1..n_categories``, then
    ``delay - 1`` blanks (0), the delimiter (``n_categories + 1``) and ``n_symbols``
    blanks. Target: blanks for ``delay + n_symbols`` steps, then the symbols again.
    (This is Arjovsky et al.'s layout: the delimiter takes the last of the T delay
    steps, so the length is exactly ``T + 20`` and the baseline is ``10·ln 8/(T + 20)``.)

    Returns:
        inputs and targets, both ``(n, delay + 2·n_symbols)`` int64 class ids.

    Example:
        >>> x, y = copy_memory(1, delay=3, n_symbols=2, n_categories=4,
        ...                    generator=make_generator(0))
        >>> x.shape, (x[0, :2] == y[0, -2:]).all().item(), x[0, 4].item()
        (torch.Size([1, 7]), True, 5)
    """
    if delay < 1:
        raise ValueError(f"delay must be >= 1, got {delay}")
    steps = delay + 2 * n_symbols
    symbols = torch.randint(1, n_categories + 1, (n, n_symbols), generator=generator)
    inputs = torch.zeros(n, steps, dtype=torch.long)  # (n, T + 20)
    targets = torch.zeros(n, steps, dtype=torch.long)
    inputs[:, :n_symbols] = symbols
    inputs[:, n_symbols + delay - 1] = n_categories + 1
    targets[:, -n_symbols:] = symbols
    return inputs, targets


class CopyMemoryDataModule(SequenceDataModule):
    """Copying memory as many-to-many classification over ``T + 20`` steps.

    Inputs are token ids of :attr:`vocab` (``"_"`` blank, ``":"`` delimiter, ``"1"``..
    ``"8"``); targets are class ids of :attr:`labels` (0 = blank, 1..8 the symbols),
    so ``num_classes = 9``. The memoryless baseline is
    :func:`~seqmodels.data.synthetic.baselines.copy_memory_baseline`.

    Example:
        >>> dm = CopyMemoryDataModule(delay=10, n_train=16, n_val=8, n_test=8, batch_size=4)
        >>> dm.setup()
        >>> b = next(iter(dm.train_dataloader()))
        >>> b["inputs"].shape, b["targets"].shape, dm.vocab_size, dm.num_classes
        (torch.Size([4, 30]), torch.Size([4, 30]), 14, 9)
    """

    kind = "many_to_many"

    def __init__(
        self,
        delay: int = 100,
        n_symbols: int = 10,
        n_categories: int = 8,
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
        self.delay, self.n_symbols, self.n_categories = delay, n_symbols, n_categories
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        names = [str(c) for c in range(1, n_categories + 1)]
        self.vocab = Vocabulary([BLANK, DELIMITER, *names], level="whitespace")
        self.labels = Labels([BLANK, *names])
        # input id of each raw class (0 blank, 1..C symbols, C + 1 delimiter)
        self._to_vocab = torch.tensor(
            [self.vocab.stoi[t] for t in (BLANK, *names, DELIMITER)], dtype=torch.long
        )

    @property
    def length(self) -> int:
        """Sequence length ``delay + 2·n_symbols``."""
        return self.delay + 2 * self.n_symbols

    def build(self) -> None:
        for offset, (split, n) in enumerate(self.sizes.items()):
            gen = make_generator(self.seed * 3 + offset)
            x, y = copy_memory(n, self.delay, self.n_symbols, self.n_categories, gen)
            x = self._to_vocab[x]  # (n, T + 20) vocabulary ids
            self.splits[split] = [{"inputs": x[i], "targets": y[i], "index": i} for i in range(n)]
