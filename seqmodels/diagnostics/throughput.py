"""``Throughput``: training tokens per second, timed around the training steps only.

Time is summed from ``on_train_batch_start`` to ``on_train_batch_end`` (forward, backward,
clipping and the optimiser step), so data loading, validation and checkpointing do not blur
a comparison of encoders. Tokens are the real (unpadded) steps of each batch: the sum of
``lengths`` (``source_lengths`` + ``target_lengths`` for encoder-decoders), else the
batch's ``inputs`` elements.

Example::

    >>> meter = Throughput()
    >>> meter.tokens, meter.seconds, meter.tokens_per_second
    (0, 0.0, 0.0)
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


def count_tokens(batch: Any) -> int:
    """Real time steps in a batch dict (see the module docstring)."""
    if not isinstance(batch, dict):
        return 0
    if "lengths" in batch:
        return int(torch.as_tensor(batch["lengths"]).sum())
    if "source_lengths" in batch:
        total = int(torch.as_tensor(batch["source_lengths"]).sum())
        if "target_lengths" in batch:
            total += int(torch.as_tensor(batch["target_lengths"]).sum())
        return total
    inputs = batch.get("inputs")
    return int(inputs.shape[0] * inputs.shape[1]) if isinstance(inputs, torch.Tensor) else 0


class Throughput(Callback):
    """Counts training tokens and the seconds spent in training steps."""

    def __init__(self) -> None:
        self.tokens = 0
        self.seconds = 0.0
        self.steps = 0
        self._start: float | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        _sync(pl_module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._start is None:
            return
        _sync(pl_module.device)
        self.seconds += time.perf_counter() - self._start
        self._start = None
        self.tokens += count_tokens(batch)
        self.steps += 1

    def summary(self) -> dict[str, float]:
        return {
            "train_tokens": float(self.tokens),
            "train_step_s": self.seconds,
            "tokens_per_s": self.tokens_per_second,
        }


def _sync(device: torch.device) -> None:
    # Asynchronous devices would otherwise be timed at kernel launch, not completion.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
