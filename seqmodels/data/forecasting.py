"""Forecasting on a measured series: windows of the past -> future values of a target."""

from __future__ import annotations

from typing import Any

import torch

from seqmodels.data.base import SequenceDataModule
from seqmodels.data.corpora.seattle_temps import seattle_temps
from seqmodels.data.readers.timeseries import read_series_csv
from seqmodels.data.splits import chronological_split

DATASETS = ("seattle_temps",)
MODES = ("many_to_one", "many_to_many")


class ForecastingDataModule(SequenceDataModule):
    """Sliding windows over a time series, split in time order (train, then val, then test).

    With ``path=None`` the embedded ``"seattle_temps"`` series is used (8,759 hourly
    temperatures of 2010). ``path`` is a CSV with a header row: ``target_column`` is
    forecast from ``feature_columns`` (default: the target alone).

    Each example is ``window`` steps of features, inputs ``(T, F)``. ``mode``:

    * ``"many_to_one"``: targets are the next ``horizon`` target values, ``(N,)``
      for ``horizon=1`` else ``(N, horizon)``;
    * ``"many_to_many"``: at every step t the target ``horizon`` steps ahead,
      ``(N, T)``.

    Windows never cross a split boundary. With ``normalize`` every column is scaled
    by the training part's mean and standard deviation (kept in :attr:`mean`/:attr:`std`
    and the checkpoint; :meth:`denormalize` maps predictions back).

    Example:
        >>> dm = ForecastingDataModule(window=24, batch_size=8)
        >>> dm.setup()
        >>> b = next(iter(dm.train_dataloader()))
        >>> b["inputs"].shape, b["targets"].shape, dm.input_size
        (torch.Size([8, 24, 1]), torch.Size([8]), 1)
    """

    def __init__(
        self,
        dataset: str = "seattle_temps",
        path: str | None = None,
        target_column: str = "value",
        feature_columns: list[str] | None = None,
        delimiter: str | None = None,
        window: int = 48,
        horizon: int = 1,
        stride: int = 1,
        mode: str = "many_to_one",
        normalize: bool = True,
        skip_invalid: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        max_length: int | None = None,
        truncate: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
    ) -> None:
        super().__init__(
            batch_size, num_workers, seed, max_length, truncate, False, val_fraction, test_fraction
        )
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        if window < 1 or horizon < 1 or stride < 1:
            raise ValueError("window, horizon and stride must be >= 1")
        if max_length is not None and window > max_length and not truncate:
            raise ValueError(
                f"window={window} is longer than max_length={max_length}; "
                "expected window <= max_length (or truncate=True)"
            )
        self.kind = mode
        self.dataset_name, self.path = dataset, path
        self.target_column, self.feature_columns = target_column, feature_columns
        self.delimiter, self.skip_invalid = delimiter, skip_invalid
        self.window, self.horizon, self.stride = window, horizon, stride
        self.mode, self.normalize = mode, normalize
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.target_index = 0

    def load_series(self) -> torch.Tensor:
        """The raw series ``(L, F)``; column :attr:`target_index` is the target."""
        if self.path is None:
            return seattle_temps()
        columns = list(self.feature_columns or [self.target_column])
        if self.target_column not in columns:
            columns.append(self.target_column)
        self.target_index = columns.index(self.target_column)
        return read_series_csv(
            self.path, columns, delimiter=self.delimiter, skip_invalid=self.skip_invalid
        )

    def build(self) -> None:
        series = self.load_series()  # (L, F)
        ranges = chronological_split(len(series), self.val_fraction, self.test_fraction)
        train = series[ranges[0].start : ranges[0].stop]
        restored_mean, restored_std = self.restored("mean"), self.restored("std")
        if restored_mean is not None:
            self.mean, self.std = torch.tensor(restored_mean), torch.tensor(restored_std)
        elif self.normalize:
            self.mean, self.std = train.mean(0), train.std(0).clamp_min(1e-8)
        if self.mean is not None:
            series = (series - self.mean) / self.std
        self.input_size = series.shape[1]
        self.output_size = self.horizon if self.mode == "many_to_one" else 1
        for split, r in zip(("train", "val", "test"), ranges, strict=True):
            self.splits[split] = self._windows(series[r.start : r.stop], split)

    def _windows(self, part: torch.Tensor, split: str) -> list[dict[str, Any]]:
        w, h = self.window, self.horizon
        n = (part.shape[0] - w - h) // self.stride + 1
        if n < 1:
            raise ValueError(
                f"the {split} part has {part.shape[0]} steps, too few for window={w} and "
                f"horizon={h}; expected at least {w + h} (lower the window or change fractions)"
            )
        y = part[:, self.target_index]  # (L,)
        examples = []
        for i in range(n):
            s = i * self.stride
            x = part[s : s + w]  # (T, F)
            if self.mode == "many_to_one":
                target = y[s + w : s + w + h]
                target = target[0] if h == 1 else target  # () or (h,)
            else:
                target = y[s + h : s + w + h]  # (T,)
            if self.max_length is not None and w > self.max_length:  # keep the latest steps
                x = x[-self.max_length :]
                target = target[-self.max_length :] if self.mode == "many_to_many" else target
            examples.append({"inputs": x, "targets": target, "index": i})
        return examples

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        """Map normalised target values back to the series' units."""
        if self.mean is None:
            return values
        i = self.target_index
        return values * self.std[i].to(values) + self.mean[i].to(values)

    def extra_state(self) -> dict[str, Any]:
        if self.mean is None:
            return {}
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}
