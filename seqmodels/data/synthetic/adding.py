"""The adding problem (Hochreiter & Schmidhuber, 1997; Le et al., 2015; Arjovsky et al., 2016)."""

from __future__ import annotations

import torch

from seqmodels.data.base import SequenceDataModule
from seqmodels.data.splits import make_generator


def adding_problem(
    n: int, length: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` adding-problem sequences of ``length`` steps.

    Channel 0 holds U[0, 1] values, channel 1 a marker that is 1 at one step drawn
    uniformly from the first half and one from the second half. The target is the
    sum of the two marked values.

    Returns:
        inputs ``(n, length, 2)`` float32 and targets ``(n,)`` float32.

    Example:
        >>> x, y = adding_problem(4, 10, make_generator(0))
        >>> x.shape, y.shape, x[..., 1].sum(1).tolist()
        (torch.Size([4, 10, 2]), torch.Size([4]), [2.0, 2.0, 2.0, 2.0])
    """
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2, got {length}")
    values = torch.rand(n, length, generator=generator)  # (n, T)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, length, (n,), generator=generator)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]  # (n,)
    return torch.stack([values, markers], dim=-1), targets


class AddingDataModule(SequenceDataModule):
    """Adding problem as a many-to-one regression: inputs ``(N, T, 2)``, targets ``(N,)``.

    Each split is generated from its own seed derived from ``seed``. The constant-1
    predictor scores MSE 1/6 (:func:`~seqmodels.data.synthetic.baselines.adding_baseline_mse`).

    Example:
        >>> dm = AddingDataModule(length=50, n_train=64, n_val=16, n_test=16, batch_size=8)
        >>> dm.setup()
        >>> batch = next(iter(dm.train_dataloader()))
        >>> batch["inputs"].shape, batch["targets"].shape, dm.input_size
        (torch.Size([8, 50, 2]), torch.Size([8]), 2)
    """

    kind = "many_to_one"

    def __init__(
        self,
        length: int = 100,
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
        self.length = length
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.input_size = 2
        self.output_size = 1

    def build(self) -> None:
        for offset, (split, n) in enumerate(self.sizes.items()):
            x, y = adding_problem(n, self.length, make_generator(self.seed * 3 + offset))
            self.splits[split] = [{"inputs": x[i], "targets": y[i], "index": i} for i in range(n)]
