"""Output heads with their losses, target checks and torchmetrics.

A head maps features ``(M, H)`` of M items (sequences for many-to-one, real time steps for
many-to-many) to scores, and owns the matching loss and metrics:

* ``"multiclass"``: ``Linear(H, C)`` + softmax cross-entropy; accuracy, macro F1.
* ``"binary"``: ``Linear(H, 1)`` + sigmoid BCE; accuracy, F1, AUROC.
* ``"regression"``: ``Linear(H, K)`` + MSE; MSE, MAE, R².

Many-to-many tasks select the real steps with a boolean mask *before* the head's loss and
metrics, so padded steps can never reach either.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassF1Score,
)
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

HEADS = ("multiclass", "binary", "regression")


class Head(nn.Module):
    """A linear head with its loss: ``head(features (M, H)) -> scores``.

    Scores are ``(M, C)`` logits (multiclass), ``(M,)`` logits (binary) or ``(M, K)``
    values (regression; ``(M,)`` when ``num_outputs == 1``).

    Example::

        >>> import torch
        >>> head = Head("multiclass", in_features=8, num_classes=3)
        >>> scores = head(torch.randn(4, 8))
        >>> head.loss(scores, torch.tensor([0, 2, 1, 1])).shape
        torch.Size([])
    """

    def __init__(
        self,
        kind: str,
        in_features: int,
        num_classes: int | None = None,
        num_outputs: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {kind!r}")
        if kind == "multiclass" and (not num_classes or num_classes < 2):
            raise ValueError(f"a multiclass head needs num_classes >= 2, got {num_classes!r}")
        self.kind = kind
        self.num_classes = num_classes
        self.num_outputs = num_outputs
        width = {"multiclass": num_classes, "binary": 1, "regression": num_outputs}[kind]
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, width)

    def forward(self, features: Tensor) -> Tensor:
        scores = self.linear(self.dropout(features))
        if self.kind == "binary" or (self.kind == "regression" and self.num_outputs == 1):
            return scores.squeeze(-1)
        return scores

    def check_targets(self, targets: Tensor, items: int, where: str) -> Tensor:
        """Validate targets for M items; returns them in the dtype the loss wants."""
        if self.kind == "multiclass":
            if targets.dtype.is_floating_point or targets.shape != (items,):
                raise ValueError(
                    f"{where}: a multiclass head needs integer class ids of shape ({items},), got "
                    f"{targets.dtype} targets of shape {tuple(targets.shape)}"
                )
            _check_range(targets, self.num_classes, where)
            return targets
        if self.kind == "binary":
            if targets.shape != (items,):
                raise ValueError(
                    f"{where}: a binary head needs targets of shape ({items},), got "
                    f"{tuple(targets.shape)}"
                )
            _check_range(targets.long(), 2, where)
            return targets
        expected = (items,) if self.num_outputs == 1 else (items, self.num_outputs)
        if targets.shape != expected and not (
            self.num_outputs == 1 and targets.shape == (items, 1)
        ):
            raise ValueError(
                f"{where}: a regression head with num_outputs={self.num_outputs} needs float "
                f"targets of shape {expected}, got {tuple(targets.shape)}"
            )
        return targets.reshape(expected)

    def loss(self, scores: Tensor, targets: Tensor) -> Tensor:
        """Mean loss over the M items."""
        if self.kind == "multiclass":
            return F.cross_entropy(scores, targets)
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(scores, targets.to(scores.dtype))
        return F.mse_loss(scores, targets.to(scores.dtype))

    def predict(self, scores: Tensor) -> Tensor:
        """Class ids (multiclass), probabilities (binary) or values (regression)."""
        if self.kind == "multiclass":
            return scores.argmax(-1)
        if self.kind == "binary":
            return torch.sigmoid(scores)
        return scores

    def metric_inputs(self, scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """``(preds, target)`` in the form the head's torchmetrics expect."""
        scores = scores.detach()
        if self.kind == "binary":
            return torch.sigmoid(scores), targets.long()
        if self.kind == "regression":
            return scores, targets.to(scores.dtype)
        return scores, targets

    def make_metrics(self, per_step: bool = False) -> MetricCollection:
        """A fresh collection of this head's torchmetrics (one per stage)."""
        if self.kind == "multiclass":
            c = self.num_classes
            return MetricCollection(
                {
                    "acc": MulticlassAccuracy(c, average="micro"),
                    "f1_macro": MulticlassF1Score(c, average="macro"),
                }
            )
        if self.kind == "binary":
            return MetricCollection(
                {"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()}
            )
        metrics = {"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}
        if not per_step:
            metrics["r2"] = R2Score(multioutput="uniform_average")
        return MetricCollection(metrics)


def _check_range(targets: Tensor, num_classes: int, where: str) -> None:
    if targets.numel() == 0:
        return
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= num_classes:
        bad = hi if hi >= num_classes else lo
        raise ValueError(
            f"{where}: target class {bad} is out of range for a head with {num_classes} classes "
            f"(valid 0..{num_classes - 1})"
        )


class StageMetrics(nn.Module):
    """One stage's (train/val/test) loss average and metric collection.

    The loss is a :class:`torchmetrics.MeanMetric` weighted by the number of real items
    (sequences or tokens), so the epoch value is a true per-item mean, unchanged by padding
    and synchronised across processes by torchmetrics.
    """

    def __init__(self, metrics: MetricCollection, prefix: str) -> None:
        super().__init__()
        self.loss = MeanMetric()
        self.scores = metrics.clone(prefix=prefix)
