"""Loggers that never delete what an earlier phase or run of the same directory wrote."""

from __future__ import annotations

import csv
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class AppendingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer that appends to an existing ``metrics.csv`` instead of deleting it.

    Lightning's writer deletes ``metrics.csv`` (and warns "Previous log files in this directory
    will be deleted") whenever its directory is not empty. A run directory never is (Hydra's
    ``config.yaml`` and log are there first), and a new writer is made for every process that
    logs: each phase of a ``ddp_spawn`` run (fit, validate, test) and a run resumed in its own
    directory. The history of the earlier phases was lost. This writer keeps the file and its
    columns; new columns are added by rewriting the header over the same rows.
    """

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                header = next(csv.reader(file), [])
            self.metrics_keys = sorted(set(header))


class CSVLogger(_LightningCSVLogger):
    """Lightning's ``CSVLogger`` writing through :class:`AppendingExperimentWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
