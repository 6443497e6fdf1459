"""What every task shares: optimisation from config, per-stage metrics, gradient-norm logging
and checkpoints that rebuild the whole model (encoder included) by themselves."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.utilities import grad_norm
from torch import Tensor
from torch.optim import Optimizer
from torchmetrics import MetricCollection

from seqmodels.tasks.heads import StageMetrics
from seqmodels.tasks.optim import OptimizerSpec, SchedulerSpec, configure_optimization

STAGES = ("train", "val", "test")


class SequenceTask(L.LightningModule):
    """Base class of the tasks. Subclasses implement :meth:`shared_step`.

    Args:
        optimizer: ``None`` (Adam, lr 1e-3), a factory ``params -> Optimizer`` (e.g.
            ``functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)``) or a mapping
            ``{"name": "sgd"|"adam"|"rmsprop"|"adagrad"|"adamw", **kwargs}``.
        scheduler: ``None``, a factory ``Optimizer -> LRScheduler`` or a mapping
            ``{"name": "exponential"|"step"|"cosine"|"plateau", **kwargs}``
            (see :mod:`seqmodels.tasks.optim`).
        scheduler_interval: step the scheduler every ``"epoch"`` or every ``"step"``.

    Checkpoints store the hyper-parameters, the encoder module included, so
    ``Task.load_from_checkpoint(path)`` rebuilds the model with no further arguments.
    Because that needs unpickling the encoder, it loads with ``weights_only=False``:
    only load checkpoints you trust. (``Trainer.fit(ckpt_path=...)`` resumes need
    ``weights_only=False`` for the same reason.)
    """

    def __init__(
        self,
        optimizer: OptimizerSpec = None,
        scheduler: SchedulerSpec = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__()
        self.optimizer_spec = optimizer
        self.scheduler_spec = scheduler
        self.scheduler_interval = scheduler_interval

    # --- hyper-parameters and checkpoints ---------------------------------------------------

    def _save_hparams(self) -> None:
        """``save_hyperparameters`` for the calling ``__init__`` (modules kept on purpose)."""
        frame = inspect.currentframe().f_back  # the subclass's __init__
        with warnings.catch_warnings():
            # We *want* the encoder module in the hparams: it is how a checkpoint rebuilds it.
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`.*")
            self.save_hyperparameters(frame=frame)

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: Any,
        map_location: Any = None,
        hparams_file: Any = None,
        strict: bool | None = None,
        weights_only: bool | None = False,
        **kwargs: Any,
    ) -> SequenceTask:
        """Lightning's ``load_from_checkpoint``, defaulting to ``weights_only=False``.

        The hyper-parameters hold the encoder module (and optimiser factories), which
        ``torch.load``'s weights-only mode refuses; load only checkpoints you trust.
        """
        return super().load_from_checkpoint(
            checkpoint_path,
            map_location=map_location,
            hparams_file=hparams_file,
            strict=strict,
            weights_only=weights_only,
            **kwargs,
        )

    # --- optimisation ------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        return configure_optimization(
            self.parameters(), self.optimizer_spec, self.scheduler_spec, self.scheduler_interval
        )

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # Called before Lightning clips, so this is the raw norm that clipping acts on.
        norms = grad_norm(self, norm_type=2)
        if norms:
            self.log("train/grad_norm", norms["grad_2.0_norm_total"], on_step=True, on_epoch=False)

    # --- metrics and steps -------------------------------------------------------------------

    def _init_stage_metrics(self, make: Callable[[], MetricCollection]) -> None:
        """One metric collection per stage, registered as submodules (moved with the model)."""
        for stage in STAGES:
            setattr(self, f"{stage}_metrics", StageMetrics(make(), prefix=f"{stage}/"))

    def stage_metrics(self, stage: str) -> StageMetrics:
        return getattr(self, f"{stage}_metrics")

    def log_stage(
        self,
        stage: str,
        loss: Tensor,
        items: int,
        preds: Tensor | None = None,
        target: Tensor | None = None,
    ) -> None:
        """Update and log a stage's loss (weighted by ``items``) and metrics, epoch-level."""
        metrics = self.stage_metrics(stage)
        metrics.loss.update(loss.detach(), weight=items)
        self.log(
            f"{stage}/loss", metrics.loss, on_step=False, on_epoch=True, prog_bar=stage == "val"
        )
        if preds is not None:
            metrics.scores.update(preds, target)
            self.log_dict(metrics.scores, on_step=False, on_epoch=True)
        if stage == "train":
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)

    def shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self.shared_step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self.shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self.shared_step(batch, "test")


def require_keys(batch: dict[str, Tensor], keys: tuple[str, ...], task: str) -> None:
    """A clear error when a batch misses a key the task's contract needs."""
    if not isinstance(batch, dict):
        raise ValueError(
            f"{task} expects a dict batch with keys {keys}, got {type(batch).__name__}"
        )
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError(f"{task} batch is missing {missing}; it has keys {sorted(batch)}")
