"""Reading back what ``seqmodels-train`` wrote: a run's config, its model and its data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from seqmodels.experiment.checkpoints import find_experiment_checkpoint, resolve_ckpt_path
from seqmodels.experiment.validate import ConfigKeyError
from seqmodels.tasks.base import read_checkpoint


@dataclass
class Run:
    """A trained run: its checkpoint, its saved (resolved) config and its directory."""

    ckpt_path: Path
    cfg: DictConfig
    run_dir: Path

    def model_class(self) -> type[L.LightningModule]:
        return get_class(self.cfg.model._target_)

    def load_model(self) -> L.LightningModule:
        """The task rebuilt from the checkpoint alone (weights on the CPU)."""
        return self.model_class().load_from_checkpoint(
            self.ckpt_path, map_location="cpu", weights_only=True
        )

    def datamodule(self, data_cfg: DictConfig | None = None) -> L.LightningDataModule:
        """The run's DataModule (or ``data_cfg``'s) with the checkpoint's vocabularies."""
        datamodule = instantiate(data_cfg if data_cfg is not None else self.cfg.data)
        checkpoint = read_checkpoint(self.ckpt_path)  # weights_only=True: plain data only
        state = checkpoint.get(type(datamodule).__qualname__)
        if state is not None:
            datamodule.load_state_dict(state)
        return datamodule


def _best_of(run_dir: Path) -> Path | None:
    """The best checkpoint a run recorded in its summary.json, if that file still exists.

    The summary stores it relative to the run directory, so a copied or moved run directory
    finds its own file; an absolute path (older summaries) counts only inside ``run_dir``.
    """
    summary = run_dir / "summary.json"
    if summary.is_file():
        best = json.loads(summary.read_text()).get("best_checkpoint")
        if best:
            path = Path(best)
            if not path.is_absolute():
                path = run_dir / path
            elif not path.resolve().is_relative_to(run_dir.resolve()):
                return None
            if path.is_file():
                return path
    return None


def load_run(ckpt_path: str, runs_dir: str | None = None, name: str | None = None) -> Run:
    """A checkpoint file, a run directory (its best, else latest, checkpoint) or ``last``
    (the latest checkpoint of experiment ``name``'s runs under ``runs_dir``).

    The run's ``config.yaml`` is looked for next to the checkpoint and up to two levels up
    (``<run>/checkpoints/<file>.ckpt``).
    """
    path = Path(str(ckpt_path)).expanduser()
    best = _best_of(path) if path.is_dir() else None
    if best is not None:
        resolved = best
    elif str(ckpt_path) == "last":
        found = find_experiment_checkpoint(runs_dir, name) if runs_dir else None
        if found is None:
            raise FileNotFoundError(
                f"ckpt_path=last: no checkpoint in the run directories under {runs_dir} "
                "(paths.runs_dir); pass ckpt_path=<.ckpt file or run directory>"
            )
        resolved = found
    else:
        resolved = Path(resolve_ckpt_path(str(ckpt_path), ".", runs_dir, name))
    for candidate in (resolved.parent, *list(resolved.parents)[1:3]):
        config = candidate / "config.yaml"
        if config.is_file():
            cfg = OmegaConf.load(config)
            if isinstance(cfg, DictConfig) and "model" in cfg and "data" in cfg:
                return Run(resolved, cfg, candidate)
    raise FileNotFoundError(
        f"{resolved}: no config.yaml of a seqmodels-train run next to it or up to two levels "
        "above; evaluation and sampling need the run's config to rebuild its data"
    )


def require_ckpt_path(cfg: DictConfig, command: str) -> str:
    """``cfg.ckpt_path``, or a configuration error that says it is required."""
    value = cfg.get("ckpt_path")
    if value is None or str(value).strip() in ("", "null", "None", "???"):
        raise ConfigKeyError(
            f"{command}: ckpt_path is required: {command} ckpt_path=<.ckpt file | run "
            "directory | last>"
        )
    return str(value)


def to_device(model: Any, accelerator: str = "auto") -> Any:
    """Move ``model`` to the accelerator Lightning would pick (nothing names a device here)."""
    from lightning.pytorch.trainer.connectors.accelerator_connector import (
        _AcceleratorConnector,
    )

    connector = _AcceleratorConnector(accelerator=accelerator, devices=1)
    return model.to(connector.strategy.root_device)
