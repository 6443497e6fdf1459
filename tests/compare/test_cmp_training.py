"""seqmodels-compare: the training mode in a shortened form, and the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqmodels.cli.compare import TrainingOptions, run_numerics, run_training
from seqmodels.diagnostics.numerics import Architecture
from seqmodels.experiment.entry import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "data.length=20",
    "data.n_train=128",
    "data.n_val=64",
    "data.n_test=64",
    "data.batch_size=32",
    "model.encoder.hidden_size=16",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_checkpoint=null",
    "report.sample.enabled=false",
]


def test_training_mode_writes_table_and_plot(tmp_path):
    result = run_training(TrainingOptions(experiment="adding", overrides=TINY), tmp_path)
    rows = result["rows"]
    assert [r["encoder"] for r in rows] == ["nn_rnn", "autograd", "bptt", "torch", "auto"]
    for row in rows:
        assert row["tokens_per_s"] > 0 and row["wall_s"] > 0
        assert row["train_tokens"] == 2 * 128 * 20  # two epochs of 128 sequences of 20 steps
        assert row["global_step"] == 2 * 4
        assert {"val/loss", "test/loss"} <= set(row["metrics"])
        assert (Path(row["run_dir"]) / "metrics.csv").exists()
    # Same seed, same data, same initial weights (ElmanRNN's default init draws exactly as
    # nn.RNN's): the three encoders end at the same loss up to float rounding.
    losses = [r["metrics"]["val/loss"] for r in rows]
    assert max(losses) - min(losses) < 1e-4 * max(losses)
    table = (tmp_path / "training.md").read_text()
    assert "tokens/s" in table and table.count("\n| ") == 6  # header + 5 rows
    assert json.loads((tmp_path / "training.json").read_text())[0]["encoder"] == "nn_rnn"
    png = tmp_path / "learning_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_numerics_mode_writes_its_table(tmp_path):
    from seqmodels.cli.compare import NumericsOptions

    opts = NumericsOptions(architecture=Architecture(seq_len=6), speed=False)
    result = run_numerics(opts, tmp_path)
    assert result["passed"]
    assert "bptt vs nn.RNN" in (tmp_path / "numerics.md").read_text()
    assert "TF32 off" in (tmp_path / "numerics.md").read_text()  # said where it is read
    assert result["precision"].startswith("TF32 off")


def _cli(tmp_path, *args):
    env = {**os.environ, "SEQMODELS_LOG_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "seqmodels.cli.compare", f"hydra.run.dir={tmp_path}/run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_numerics_passes_and_a_perturbed_weight_fails(tmp_path):
    ok = _cli(tmp_path, "numerics.quick=true", "numerics.speed_rounds=1")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "PASS" in ok.stdout and "train × nn.RNN" in ok.stdout
    bad = _cli(
        tmp_path,
        "numerics.speed=false",
        "numerics.perturb=1e-3",
        "numerics.architecture.num_layers=2",
        "numerics.perturb_parameter=weight_ih_l1",
    )
    assert bad.returncode == 1
    assert "FAIL" in bad.stdout and "differences above the tolerance" in bad.stderr


def test_cli_rejects_a_misspelt_key(tmp_path):
    result = _cli(tmp_path, "numerics.architecture.hiden_size=3")
    assert result.returncode != 0
    assert "hiden_size" in result.stderr


@pytest.mark.parametrize(
    "experiment", sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
)
def test_every_experiment_can_be_shortened(experiment):
    from seqmodels.cli.compare import compose_train, short_overrides

    cfg = compose_train(
        [f"experiment={experiment}", *short_overrides(experiment), "paths.output_dir=unused"]
    )
    if experiment == "adding":
        assert cfg.trainer.max_epochs == 3 and cfg.data.length == 50
    else:
        assert cfg.trainer.max_steps == 200 and cfg.trainer.max_epochs == 1
