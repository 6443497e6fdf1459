"""An interrupted run resumed from its checkpoint ends where an uninterrupted one does."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import pytest
from conftest import compose_cfg
from omegaconf import open_dict

from seqmodels.cli.train import train
from seqmodels.experiment import find_last_checkpoint

# Shuffled data and dropout: the resumed run must shuffle epoch e as the uninterrupted run did
# and restore the global RNG, not only the weights and the optimiser.
SMALL = [
    "experiment=adding",
    "data.length=10",
    "data.n_train=96",
    "data.n_val=32",
    "data.n_test=32",
    "data.batch_size=16",
    "model.encoder.hidden_size=8",
    "model.dropout=0.3",
    "trainer.max_epochs=3",
    "trainer.accelerator=cpu",
    "callbacks.rich_progress_bar=null",
]


class Interrupt(L.Callback):
    """Fails the run when epoch ``epoch`` starts (its predecessor's checkpoint is written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt("simulated kill")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_matches_uninterrupted_run(tmp_path):
    full, _ = train(
        compose_cfg("train", [*SMALL, f"paths.output_dir={tmp_path / 'full'}"], tmp_path)
    )

    cfg = compose_cfg("train", [*SMALL, f"paths.output_dir={tmp_path / 'killed'}"], tmp_path)
    with open_dict(cfg):
        cfg.callbacks.interrupt = {"_target_": f"{__name__}.Interrupt", "epoch": 2}
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg)
    killed_ckpts = {p: _digest(p) for p in (tmp_path / "killed").rglob("*.ckpt")}
    assert killed_ckpts, "the interrupted run wrote no checkpoint"
    assert not list((tmp_path / "killed").rglob("*.tmp")), "a partial checkpoint was left"

    resumed_cfg = compose_cfg(
        "train",
        [
            *SMALL,
            f"paths.output_dir={tmp_path / 'resumed'}",
            f"paths.runs_dir={tmp_path / 'killed'}",
            "ckpt_path=last",
        ],
        tmp_path,
    )
    resumed, objects = train(resumed_cfg)
    assert objects["trainer"].current_epoch == 3
    for key in ("val/loss", "test/loss", "train/loss"):
        assert resumed[key] == pytest.approx(full[key], rel=1e-5, abs=1e-7), key
    # The resumed run wrote only into its own directory: the old checkpoints are untouched.
    assert {p: _digest(p) for p in (tmp_path / "killed").rglob("*.ckpt")} == killed_ckpts
    assert find_last_checkpoint(tmp_path / "resumed") is not None


def test_resume_in_the_same_directory_keeps_earlier_checkpoints(tmp_path):
    out = tmp_path / "run"
    small = [*SMALL, "trainer.max_epochs=1", f"paths.output_dir={out}"]
    train(compose_cfg("train", small, tmp_path))
    first = {p: _digest(p) for p in (out / "checkpoints").glob("*.ckpt")}
    cfg = compose_cfg("train", [*small, "trainer.max_epochs=2", "ckpt_path=last"], tmp_path)
    _, objects = train(cfg)
    assert {p: _digest(p) for p in (out / "checkpoints").glob("*.ckpt")} == first
    assert Path(objects["trainer"].checkpoint_callback.dirpath) == out / "checkpoints" / "run-2"
