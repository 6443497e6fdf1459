"""Hydra callbacks: a sweep's results collected in one file, failed trials included."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from seqmodels.experiment.summary import write_json

SUMMARY_NAME = "sweep_summary.json"


class SweepSummary(Callback):
    """Writes ``<sweep dir>/sweep_summary.json`` after every job of a ``--multirun``.

    Each job gets its number, overrides, run directory, status (``COMPLETED``/``FAILED``)
    and either the value ``train`` returned (the optimised metric) or the error. The file
    is rewritten after each job, so it is complete up to the last finished job even when a
    failure stops the sweep, and failed jobs never touch the others' run directories.
    """

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Resolved here, where the config still holds the paths it interpolates.
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra_cfg = job_return.hydra_cfg.hydra if job_return.hydra_cfg is not None else None
        if hydra_cfg is None or hydra_cfg.mode != RunMode.MULTIRUN:
            return
        entry: dict[str, Any] = {
            "job": int(hydra_cfg.job.num),
            "overrides": list(job_return.overrides or []),
            "run_dir": str(hydra_cfg.runtime.output_dir),
            "status": job_return.status.name,
        }
        try:
            # Hydra's public accessor: the job's result, or its error raised again.
            value = job_return.return_value
        except Exception as err:
            entry["error"] = "".join(traceback.format_exception_only(type(err), err)).strip()
            print(f"[sweep] job {entry['job']} {entry['overrides']} FAILED: {entry['error']}")
        else:
            entry["result"] = (
                value if isinstance(value, int | float | str | type(None)) else str(value)
            )
        self.jobs.append(entry)
        # A launcher that runs jobs elsewhere (submitit) never called on_multirun_start here.
        sweep_dir = self.sweep_dir or Path(entry["run_dir"]).parent
        write_json(sweep_dir / SUMMARY_NAME, {"jobs": sorted(self.jobs, key=lambda j: j["job"])})
