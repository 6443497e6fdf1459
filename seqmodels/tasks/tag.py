"""Many-to-many: a label (or value) at every real step; padded steps never count."""

from __future__ import annotations

from torch import Tensor, nn

from seqmodels.core import IGNORE_INDEX, length_mask
from seqmodels.tasks.base import SequenceTask, require_keys
from seqmodels.tasks.encoding import SequenceEncoder
from seqmodels.tasks.heads import Head
from seqmodels.tasks.optim import OptimizerSpec, SchedulerSpec


class SequenceTagger(SequenceTask):
    """Per-step tagging or per-step regression / forecasting (many-to-many).

    Batch: ``{"inputs": (N, T) long | (N, T, F) float, "lengths": (N,), "targets": ...}``
    with ``targets`` ``(N, T)`` tag ids padded with -100 (``head="multiclass"`` or
    ``"binary"``) or floats ``(N, T)`` / ``(N, T, K)`` padded with 0 (``"regression"``).

    The mask of real steps comes from ``lengths``: only those steps reach the loss and the
    metrics, so appending padding changes neither. Logged per stage: ``loss`` and token
    accuracy + macro F1 (tags) or MSE + MAE (regression). A bidirectional encoder sees both
    sides of every step.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanRNN
        >>> task = SequenceTagger(ElmanRNN(8, 16, batch_first=True, bidirectional=True),
        ...                       num_classes=5, vocab_size=20, embedding_dim=8)
        >>> task(torch.randint(0, 20, (2, 6)), torch.tensor([6, 4])).shape
        torch.Size([2, 6, 5])
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int | None = 2,
        head: str = "multiclass",
        num_outputs: int = 1,
        vocab_size: int | None = None,
        embedding_dim: int | None = None,
        input_size: int | None = None,
        input_mode: str | None = None,
        dropout: float = 0.0,
        optimizer: OptimizerSpec = None,
        scheduler: SchedulerSpec = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval)
        self._save_hparams()
        self.body = SequenceEncoder(encoder, vocab_size, embedding_dim, input_size, input_mode)
        self.head = Head(head, self.body.output_size, num_classes, num_outputs, dropout)
        self._init_stage_metrics(lambda: self.head.make_metrics(per_step=True))

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Per-step scores ``(N, T, C)``, ``(N, T)`` or ``(N, T, K)`` (padded steps: garbage)."""
        outputs, _ = self.body(inputs, lengths)  # (N, T, H)
        return self.head(outputs)

    def predict(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Per-step tag ids / probabilities / values; padded steps hold -100 (or 0.0)."""
        scores = self(inputs, lengths)
        preds = self.head.predict(scores)
        mask = length_mask(lengths.to(preds.device), preds.shape[1])  # (N, T)
        fill = IGNORE_INDEX if not preds.dtype.is_floating_point else 0.0
        mask = mask.view(*mask.shape, *([1] * (preds.dim() - 2)))
        return preds.masked_fill(~mask, fill)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int = 0) -> Tensor:
        return self.predict(batch["inputs"], batch["lengths"])

    def shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        require_keys(batch, ("inputs", "lengths", "targets"), type(self).__name__)
        scores = self(batch["inputs"], batch["lengths"])  # (N, T, ...)
        targets = batch["targets"]
        n, steps = scores.shape[:2]
        if tuple(targets.shape[:2]) != (n, steps):
            raise ValueError(
                f"{stage} batch: per-step targets must start with (N, T) = {(n, steps)} like the "
                f"inputs, got targets of shape {tuple(targets.shape)}"
            )
        mask = length_mask(batch["lengths"].to(scores.device), steps)  # (N, T): real steps
        if not targets.dtype.is_floating_point:
            # ignore_index marks padding too; a real step carrying it is dropped on purpose.
            mask = mask & (targets != IGNORE_INDEX)
        real_scores = scores[mask]  # (M, ...): real steps only
        real_targets = self.head.check_targets(
            targets[mask], real_scores.shape[0], f"{stage} batch"
        )
        loss = self.head.loss(real_scores, real_targets)
        preds, target = self.head.metric_inputs(real_scores, real_targets)
        self.log_stage(stage, loss, real_scores.shape[0], preds, target)
        return loss
