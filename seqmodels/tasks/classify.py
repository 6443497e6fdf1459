"""Many-to-one: one label (or value) per sequence, from pooled encoder outputs."""

from __future__ import annotations

from torch import Tensor, nn

from seqmodels.tasks.base import SequenceTask, require_keys
from seqmodels.tasks.encoding import SequenceEncoder
from seqmodels.tasks.heads import Head
from seqmodels.tasks.optim import OptimizerSpec, SchedulerSpec
from seqmodels.tasks.pooling import POOLINGS, pool


class SequenceClassifier(SequenceTask):
    """Sequence classification or regression (many-to-one) on any recurrent encoder.

    Batch: ``{"inputs": (N, T) long | (N, T, F) float, "lengths": (N,), "targets": ...}``
    with ``targets`` ``(N,)`` class ids (``head="multiclass"``), ``(N,)`` 0/1 (``"binary"``)
    or ``(N,)`` / ``(N, K)`` floats (``"regression"``, ``num_outputs=K``).

    The encoder's outputs are pooled over each sequence's real steps (``pooling``:
    ``"last"``, ``"mean"`` or ``"max"``) and fed to the head. Logged per stage
    (``train/``, ``val/``, ``test/``): ``loss`` and accuracy + macro F1 (multiclass),
    accuracy + F1 + AUROC (binary) or MSE + MAE + R² (regression).

    Inputs: token ids go through an embedding (``vocab_size`` + ``embedding_dim``) or one-hot
    vectors (``input_mode="onehot"``); float features pass straight to the encoder.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanRNN
        >>> task = SequenceClassifier(ElmanRNN(8, 16, batch_first=True), num_classes=3,
        ...                           vocab_size=20, embedding_dim=8, pooling="mean")
        >>> task(torch.randint(0, 20, (4, 7)), torch.tensor([7, 5, 2, 1])).shape
        torch.Size([4, 3])
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int | None = 2,
        head: str = "multiclass",
        num_outputs: int = 1,
        pooling: str = "last",
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
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.pooling = pooling
        self.body = SequenceEncoder(encoder, vocab_size, embedding_dim, input_size, input_mode)
        self.head = Head(head, self.body.output_size, num_classes, num_outputs, dropout)
        self._init_stage_metrics(self.head.make_metrics)

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Scores ``(N, C)`` logits, ``(N,)`` binary logits or ``(N, K)`` / ``(N,)`` values."""
        outputs, _ = self.body(inputs, lengths)  # (N, T, H)
        pooled = pool(outputs, lengths, self.pooling, self.body.direction_sizes)  # (N, H)
        return self.head(pooled)

    def predict(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Class ids (multiclass), probabilities (binary) or values (regression)."""
        return self.head.predict(self(inputs, lengths))

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int = 0) -> Tensor:
        return self.predict(batch["inputs"], batch["lengths"])

    def shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        require_keys(batch, ("inputs", "lengths", "targets"), type(self).__name__)
        scores = self(batch["inputs"], batch["lengths"])
        targets = self.head.check_targets(batch["targets"], scores.shape[0], f"{stage} batch")
        loss = self.head.loss(scores, targets)
        self.log_stage(stage, loss, scores.shape[0], *self.head.metric_inputs(scores, targets))
        return loss
