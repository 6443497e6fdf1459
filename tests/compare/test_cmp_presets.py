"""The gradient-diagnostics presets (seqmodels/conf/experiment/grad_diagnostics*), shortened."""

import math

import pytest

from seqmodels.cli.compare import compose_train
from seqmodels.diagnostics.gradients import load_csv

SHORT = [
    "data.n_train=500",
    "data.n_val=50",
    "data.n_test=50",
    "trainer.max_epochs=1",
    "callbacks.gradient_diagnostics.every_n_steps=3",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_checkpoint=null",
]


def _run(experiment, tmp_path):
    from seqmodels.cli.train import train

    cfg = compose_train([f"experiment={experiment}", *SHORT, f"paths.output_dir={tmp_path}"])
    train(cfg)
    assert (tmp_path / "gradient_diagnostics.png").stat().st_size > 10_000
    assert (tmp_path / "learning_curves.png").exists()  # RunPlots
    record = load_csv(tmp_path / "gradient_diagnostics.csv")
    assert record["steps"] == [0, 3, 6, 9]
    assert record["norms"].shape == (4, 100)  # one norm per time step of T = 100
    last = record["norms"][-1]
    return math.log10(float(last[-1]) / float(last[0])), record


def test_presets_compose():
    for name, act, init, clip in [
        ("grad_diagnostics", "tanh", "default", None),
        ("grad_diagnostics_irnn", "relu", "identity", None),
        ("grad_diagnostics_clip", "relu", "identity", 1.0),
    ]:
        cfg = compose_train([f"experiment={name}", "paths.output_dir=unused"])
        assert cfg.name == name
        assert (cfg.model.encoder.nonlinearity, cfg.model.encoder.init) == (act, init)
        assert cfg.trainer.gradient_clip_val == clip
        assert cfg.callbacks.gradient_diagnostics.every_n_steps == 10
        assert cfg.data.length == 100


@pytest.mark.slow
def test_tanh_preset_vanishes_and_irnn_does_not(tmp_path):
    tanh, _ = _run("grad_diagnostics", tmp_path / "tanh")
    irnn, _ = _run("grad_diagnostics_irnn", tmp_path / "irnn")
    assert tanh > 10  # the first step gets less than 1e-10 of the last step's gradient
    assert abs(irnn) < 2


@pytest.mark.slow
def test_clip_preset_bounds_the_update(tmp_path):
    _, record = _run("grad_diagnostics_clip", tmp_path)
    assert max(record["grad_norm_before"]) > 10
    assert max(record["grad_norm_after"]) <= 1.0 + 1e-4
