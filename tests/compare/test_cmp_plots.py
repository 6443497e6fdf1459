"""RunPlots and the plot helpers: learning curves, confusion matrix, attention map."""

import warnings

import lightning as L
import matplotlib
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from seqmodels import ElmanCell, ElmanRNN
from seqmodels.data import SequenceTransformDataModule
from seqmodels.diagnostics import RunPlots
from seqmodels.diagnostics.plots import (
    gradient_heatmap,
    learning_curves,
    overlay_learning_curves,
    read_metrics_csv,
)
from seqmodels.tasks import Seq2Seq, SequenceTagger

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path, min_bytes=5000):
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > min_bytes


def test_matplotlib_runs_headless():
    import seqmodels.diagnostics.plots  # noqa: F401

    assert matplotlib.get_backend().lower() == "agg"


def _fit(task, dm, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = L.Trainer(
            max_epochs=2,
            callbacks=[RunPlots()],
            logger=CSVLogger(tmp_path, name="", version=""),
            log_every_n_steps=1,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
        )
        trainer.fit(task, datamodule=dm)
    return next(c for c in trainer.callbacks if isinstance(c, RunPlots))


def test_seq2seq_run_leaves_learning_curves_and_attention(tmp_path):
    torch.manual_seed(0)
    dm = SequenceTransformDataModule(
        n_symbols=6, min_len=3, max_len=6, n_train=128, n_val=32, n_test=32, batch_size=32
    )
    task = Seq2Seq(
        ElmanRNN(8, 16, batch_first=True),
        decoder_cell=ElmanCell(8 + 16, 16),
        target_vocab_size=10,
        source_vocab_size=10,
        source_embedding_dim=8,
        target_embedding_dim=8,
        attention="dot",
    )
    plots = _fit(task, dm, tmp_path)
    assert set(plots.saved) == {"learning_curves", "attention"}
    assert _is_png(tmp_path / "learning_curves.png")
    assert _is_png(tmp_path / "attention.png")


def test_tagger_run_leaves_a_confusion_matrix(tmp_path):
    from seqmodels.data import CopyMemoryDataModule

    torch.manual_seed(0)
    dm = CopyMemoryDataModule(delay=5, n_train=64, n_val=32, n_test=32, batch_size=32)
    dm.setup()
    task = SequenceTagger(
        ElmanRNN(8, 16, batch_first=True),
        num_classes=dm.num_classes,
        vocab_size=dm.vocab_size,
        embedding_dim=8,
    )
    plots = _fit(task, dm, tmp_path)
    assert "confusion_matrix" in plots.saved
    assert _is_png(tmp_path / "confusion_matrix.png")


def test_learning_curves_from_metrics_csv(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,train/loss_step,val/loss,lr-Adam\n"
        "0,0,2.0,,0.1\n0,1,1.5,,0.1\n0,1,,1.7,\n1,2,1.0,,0.1\n1,3,0.8,,0.1\n1,3,,1.1,\n"
    )
    series = read_metrics_csv(path)
    assert series["val/loss"] == [(1, 1.7), (3, 1.1)]
    fig = learning_curves(path)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["loss"]  # lr left out
    fig = overlay_learning_curves({"a": path, "b": series}, ["val/loss"])
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="no metric to plot"):
        overlay_learning_curves({"a": path}, ["nope"])


def test_heatmap_tolerates_zeros_and_ragged_rows():
    values = torch.tensor([[0.0, 1e-20, 1.0], [float("nan"), 1e-3, 2.0]])
    fig = gradient_heatmap(values, steps=[0, 10])
    norm = fig.axes[0].images[0].norm
    assert norm.vmin == pytest.approx(1e-20) and norm.vmax == pytest.approx(2.0)
