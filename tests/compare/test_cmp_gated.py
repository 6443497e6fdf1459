"""Gradient diagnostics with gated cells, and the research sweep's short version."""

import json
import math
import tempfile

import lightning as L
import pytest
import torch

from seqmodels import GRU, LSTM, GRUCell, Stacked
from seqmodels.data import AddingDataModule
from seqmodels.diagnostics import GradientDiagnostics
from seqmodels.diagnostics.gradients import encoder_label
from seqmodels.diagnostics.implementations import build_implementations
from seqmodels.diagnostics.research import baseline, collect, run, to_markdown
from seqmodels.diagnostics.stepping import HiddenGradientProbe, stepped_forward
from seqmodels.tasks import SequenceClassifier


def unrolled_hidden_grad_norms(module, x):
    """‖∂L/∂h_t‖ by brute force: the module run one step at a time with retain_grad on h_t."""
    state, hs, outs = None, [], []
    for t in range(x.shape[0]):
        out, state = module(x[t : t + 1], state)
        h = state[0] if isinstance(state, tuple) else state
        h.retain_grad()
        out.retain_grad()
        hs.append(h)
        outs.append(out)
    loss = torch.cat(outs).pow(2).sum() + (state[0] if isinstance(state, tuple) else state).sum()
    loss.backward()
    # A fused module returns y_t and h_t as separate graph tensors: the total derivative
    # with respect to the top layer's h_t is the sum of both gradients.
    return torch.stack(
        [(h.grad[-1] + o.grad[0]).double().norm() for h, o in zip(hs, outs, strict=True)]
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_hidden_gradient_norms_of_tuple_and_gated_states(cell):
    """Every implementation, stepped by the probe, gives the brute-force ‖∂L/∂h_t‖."""
    models = build_implementations(cell, seed=0, input_size=3, hidden_size=5, num_layers=2)
    x = torch.randn(7, 2, 3)
    reference = unrolled_hidden_grad_norms(models[f"nn.{cell.upper()}"], x)
    assert reference[0] > 0
    for name, model in models.items():
        probe = HiddenGradientProbe()
        out, final = stepped_forward(model, x, None, probe)
        h_n = final[0] if isinstance(final, tuple) else final
        (out.pow(2).sum() + h_n.sum()).backward()
        torch.testing.assert_close(probe.norms(), reference, rtol=1e-4, atol=1e-7, msg=name)


def test_labels_name_the_cell():
    assert encoder_label(LSTM(2, 3)) == "LSTM[auto], h of (h, c)"
    assert encoder_label(GRU(2, 3, backend="autograd")) == "GRU[autograd]"
    assert encoder_label(torch.nn.LSTM(2, 3)) == "torch.nn.LSTM, h of (h, c)"
    generic = Stacked.from_cell(lambda size: GRUCell(size, 3), 2, 1)
    assert "of GRUCell" in encoder_label(generic)


def test_gradient_diagnostics_with_an_lstm_say_so_in_the_plot(tmp_path):
    task = SequenceClassifier(
        LSTM(2, 8, batch_first=True), num_classes=None, head="regression", input_size=2
    )
    diag = GradientDiagnostics(every_n_steps=2, dirpath=tmp_path)
    dm = AddingDataModule(length=15, n_train=32, n_val=8, n_test=8, batch_size=8)
    trainer = L.Trainer(
        max_steps=3,
        callbacks=[diag],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tempfile.mkdtemp(),
    )
    trainer.fit(task, datamodule=dm)
    assert diag.steps == [0, 2] and tuple(diag.matrix().shape) == (2, 15)
    assert bool((diag.matrix() > 0).all())
    title = diag.figure().axes[0].get_title()
    assert "LSTM[auto]" in title and "h of (h, c)" in title
    assert (tmp_path / "gradient_diagnostics.png").is_file()


def test_baselines():
    assert baseline("adding", 100) == pytest.approx(1 / 6)
    assert baseline("copy_memory", 20) == pytest.approx(10 * math.log(8) / 40)


def test_research_sweep_short_version(tmp_path):
    """The documented sweep, shortened: 2 cells, 1 length, a few steps."""
    rows = run(
        tmp_path,
        cells=["tanh", "lstm"],
        values={"adding": [12], "copy_memory": []},
        overrides=["trainer.max_epochs=1", "data.n_train=128", "data.n_val=32", "data.n_test=32"],
    )
    assert sorted(r["cell"] for r in rows) == ["lstm", "tanh"]
    for row in rows:
        assert row["status"] == "COMPLETED" and row["T"] == 12
        assert math.isfinite(row["val_loss"]) and row["wall_s"] > 0
        assert 0 < row["grad_ratio"] < math.inf  # ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at initialisation
    table = (tmp_path / "research.md").read_text()
    assert table.count("| adding | 12 |") == 2
    assert json.loads((tmp_path / "research.json").read_text())["rows"] == rows
    assert collect("adding", tmp_path / "adding") == rows
    assert to_markdown(rows) == table.strip()
