"""Reading back what ``seqmodels-train`` wrote: a run's config, its model and its data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from seqmodels.experiment.checkpoints import resolve_ckpt_path


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
        return self.model_class().load_from_checkpoint(self.ckpt_path, map_location="cpu")

    def datamodule(self, data_cfg: DictConfig | None = None) -> L.LightningDataModule:
        """The run's DataModule (or ``data_cfg``'s) with the checkpoint's vocabularies."""
        datamodule = instantiate(data_cfg if data_cfg is not None else self.cfg.data)
        checkpoint = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        state = checkpoint.get(type(datamodule).__qualname__)
        if state is not None:
            datamodule.load_state_dict(state)
        return datamodule


def _best_of(run_dir: Path) -> Path | None:
    """The best checkpoint a run recorded in its summary.json, if that file still exists."""
    summary = run_dir / "summary.json"
    if summary.is_file():
        import json

        best = json.loads(summary.read_text()).get("best_checkpoint")
        if best and Path(best).is_file():
            return Path(best)
    return None


def load_run(ckpt_path: str, runs_dir: str | None = None) -> Run:
    """A checkpoint file, a run directory (its best, else latest, checkpoint) or ``last``.

    The run's ``config.yaml`` is looked for next to the checkpoint and up to two levels up
    (``<run>/checkpoints/<file>.ckpt``).
    """
    path = Path(str(ckpt_path)).expanduser()
    best = _best_of(path) if path.is_dir() else None
    resolved = best or Path(resolve_ckpt_path(str(ckpt_path), runs_dir or ".", runs_dir))
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


def to_device(model: Any, accelerator: str = "auto") -> Any:
    """Move ``model`` to the accelerator Lightning would pick (nothing names a device here)."""
    from lightning.pytorch.trainer.connectors.accelerator_connector import (
        _AcceleratorConnector,
    )

    connector = _AcceleratorConnector(accelerator=accelerator, devices=1)
    return model.to(connector.strategy.root_device)
