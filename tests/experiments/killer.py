"""A callback that SIGKILLs its own process mid-epoch: a real, unclean death of a run."""

from __future__ import annotations

import os
import signal

import lightning as L


class SigkillAt(L.Callback):
    """Kills the process (SIGKILL: no cleanup, no finally) at ``batch`` of ``epoch``."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)
