"""Checkpoints are written whole or not at all, through Lightning's public CheckpointIO."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from seqmodels.experiment.checkpoints import AtomicCheckpointIO, SafeModelCheckpoint


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("simulated failure while writing the checkpoint")


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        data = TensorDataset(torch.randn(8, 2), torch.randn(8, 1))
        return DataLoader(data, batch_size=4)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="simulated failure"):
        io.save_checkpoint({"step": 2, "bad": _Unpicklable()}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"], "a .tmp was left"
    assert io.load_checkpoint(path)["step"] == 1


def test_write_replaces_the_file_with_a_loadable_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, str(path))
    io.save_checkpoint({"step": 2, "w": torch.arange(4)}, f"file://{path}")
    loaded = io.load_checkpoint(path)
    assert loaded["step"] == 2 and torch.equal(loaded["w"], torch.arange(4))


def _fit(dirpath: Path, max_epochs: int) -> L.Trainer:
    callback = SafeModelCheckpoint(dirpath=str(dirpath), save_last=True)
    trainer = L.Trainer(
        max_epochs=max_epochs,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(_Tiny())
    return trainer


def test_safe_checkpoint_installs_the_atomic_io_and_spares_earlier_runs(tmp_path):
    first = _fit(tmp_path / "checkpoints", max_epochs=1)
    assert isinstance(first.strategy.checkpoint_io, AtomicCheckpointIO)
    earlier = {p: p.read_bytes() for p in (tmp_path / "checkpoints").glob("*.ckpt")}
    assert any(p.name == "last.ckpt" for p in earlier), sorted(earlier)

    second = _fit(tmp_path / "checkpoints", max_epochs=2)
    # The second run writes beside, never over, the first run's files.
    assert Path(second.checkpoint_callback.dirpath) == tmp_path / "checkpoints" / "run-2"
    assert {p: p.read_bytes() for p in (tmp_path / "checkpoints").glob("*.ckpt")} == earlier
    assert (tmp_path / "checkpoints" / "run-2" / "last.ckpt").is_file()
    assert not list(tmp_path.rglob("*.tmp"))
