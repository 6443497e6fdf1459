"""``RunPlots``: the pictures a run should leave behind, saved as PNG in its run directory.

At the end of training it writes, where they apply:

* ``learning_curves.png``: every metric of the run's ``CSVLogger`` ``metrics.csv``;
* ``confusion_matrix.png``: validation confusion matrix of a multiclass
  :class:`~seqmodels.tasks.SequenceClassifier` or :class:`~seqmodels.tasks.SequenceTagger`;
* ``attention.png``: attention weights of the first validation example of a
  :class:`~seqmodels.tasks.Seq2Seq` with attention, decoded greedily.

The helpers :func:`collect_predictions` and :func:`attention_weights` are usable on their
own (the notebooks do).

Example::

    >>> import torch
    >>> from seqmodels import ElmanCell, ElmanRNN
    >>> from seqmodels.tasks import Seq2Seq
    >>> task = Seq2Seq(ElmanRNN(8, 16, batch_first=True), decoder_cell=ElmanCell(8 + 16, 16),
    ...                target_vocab_size=10, source_vocab_size=10, source_embedding_dim=8,
    ...                target_embedding_dim=8, attention="dot")
    >>> weights, ids = attention_weights(task, torch.randint(4, 10, (1, 5)), torch.tensor([5]),
    ...                                  max_length=6)
    >>> weights.shape[1], bool(torch.allclose(weights.sum(1), torch.ones(len(weights))))
    (5, True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor

from seqmodels.diagnostics import plots


def collect_predictions(task: Any, dataloader: Any, limit_batches: int | None = None):
    """``(preds, targets)`` of a multiclass classifier or tagger over ``dataloader``.

    Tagging targets are flattened, padding (-100) dropped.
    """
    preds, targets = [], []
    was_training = task.training
    task.eval()
    with torch.no_grad():
        for i, batch in enumerate(dataloader):
            if limit_batches is not None and i >= limit_batches:
                break
            inputs = batch["inputs"].to(task.device)
            p = task.predict(inputs, batch["lengths"]).cpu()
            t = batch["targets"].cpu()
            keep = t != -100
            preds.append(p[keep])
            targets.append(t[keep])
    task.train(was_training)
    return torch.cat(preds), torch.cat(targets)


def attention_weights(
    task: Any, source: Tensor, source_lengths: Tensor, max_length: int | None = None
) -> tuple[Tensor, Tensor]:
    """Greedy decoding of one source ``(1, S)``; returns ``weights (U, S)`` and ids ``(U,)``.

    The weights are caught by a forward hook on the decoder's attention module (one call
    per decoding step), so the task's code is used as it is.
    """
    attention = getattr(getattr(task, "decoder", None), "attention", None)
    if attention is None:
        raise ValueError(f"{type(task).__name__} has no decoder attention to show")
    captured: list[Tensor] = []
    handle = attention.register_forward_hook(lambda m, a, out: captured.append(out[1].detach()))
    was_training = task.training
    task.eval()
    try:
        ids = task.decode(source, source_lengths, max_length=max_length, beam_width=1)[0]
    finally:
        handle.remove()
        task.train(was_training)
    weights = torch.cat([w[:1] for w in captured], 0).cpu()  # (steps, S)
    ids = ids.cpu()
    eos = (ids == task.eos_id).nonzero()
    steps = int(eos[0]) + 1 if len(eos) else len(ids)
    return weights[:steps, : int(source_lengths[0])], ids[:steps]


class RunPlots(Callback):
    """Saves learning curves, a confusion matrix and an attention map at the end of training.

    Args:
        dirpath: where the PNGs go (default: the logger's run directory, else the trainer's
            ``default_root_dir``).
        confusion_batches: validation batches used for the confusion matrix.
    """

    def __init__(self, dirpath: str | os.PathLike | None = None, confusion_batches: int = 20):
        self.dirpath = dirpath
        self.confusion_batches = confusion_batches
        self.saved: dict[str, Path] = {}

    def run_dir(self, trainer: L.Trainer) -> Path:
        if self.dirpath is not None:
            return Path(self.dirpath)
        return Path(trainer.log_dir or trainer.default_root_dir)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        directory = self.run_dir(trainer)
        self._learning_curves(trainer, directory)
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None:
            return
        head = getattr(pl_module, "head", None)
        if getattr(head, "kind", None) == "multiclass" and hasattr(pl_module, "predict"):
            self._confusion(pl_module, datamodule, head.num_classes, directory)
        if getattr(getattr(pl_module, "decoder", None), "attention", None) is not None:
            self._attention(pl_module, datamodule, directory)

    def _learning_curves(self, trainer: L.Trainer, directory: Path) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger):
                logger.save()  # flush buffered rows before reading them back
                path = Path(logger.log_dir) / "metrics.csv"
                if path.exists() and path.stat().st_size:
                    fig = plots.learning_curves(path)
                    self.saved["learning_curves"] = plots.save_figure(
                        fig, directory / "learning_curves.png"
                    )
                return

    def _confusion(self, task: Any, datamodule: Any, num_classes: int, directory: Path) -> None:
        preds, targets = collect_predictions(
            task, datamodule.val_dataloader(), self.confusion_batches
        )
        labels = getattr(getattr(datamodule, "labels", None), "names", None)
        fig = plots.confusion_matrix(
            preds, targets, num_classes, labels if labels and len(labels) <= 30 else None
        )
        self.saved["confusion_matrix"] = plots.save_figure(fig, directory / "confusion_matrix.png")

    def _attention(self, task: Any, datamodule: Any, directory: Path) -> None:
        batch = next(iter(datamodule.val_dataloader()))
        source = batch["source"][:1].to(task.device)
        weights, ids = attention_weights(task, source, batch["source_lengths"][:1])
        vocab = getattr(datamodule, "vocab", None)
        target_vocab = getattr(datamodule, "target_vocab", None)
        src_tokens = tgt_tokens = None
        if hasattr(vocab, "lookup"):
            n = int(batch["source_lengths"][0])
            src_tokens = vocab.lookup(batch["source"][0, :n].tolist(), skip_special=False)
        if hasattr(target_vocab, "lookup"):
            tgt_tokens = target_vocab.lookup(ids.tolist(), skip_special=False)
        fig = plots.attention_map(weights, src_tokens, tgt_tokens)
        self.saved["attention"] = plots.save_figure(fig, directory / "attention.png")
