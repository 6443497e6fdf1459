"""The research sweep's plumbing (no training): commands, per-cell overrides, presets, rows.

The short end-to-end run is ``tests/compare/test_cmp_gated.py::test_research_sweep_short_version``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from seqmodels.diagnostics import research
from seqmodels.diagnostics.research import (
    CELL_OVERRIDES,
    CELLS,
    TASKS,
    baseline,
    collect,
    sweep_command,
    to_markdown,
    verdict,
)
from seqmodels.experiment.entry import CONFIG_MODULE
from seqmodels.experiment.schema import register_configs
from seqmodels.experiment.validate import check_targets

ENCODERS = [
    "elman",
    "lstm",
    "gru",
    "generic",
    "torch_rnn",
    "irnn",
    "elman_relu",
    "lnlstm",
    "lngru",
    "indrnn",
]


def compose_train(*overrides: str):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_research_presets_stay_encoder_agnostic(task):
    experiment = TASKS[task][0]
    for encoder in ENCODERS:
        check_targets(compose_train(f"experiment={experiment}", f"model/encoder={encoder}"))


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_each_research_cell_composes_as_the_sweep_runs_it(task, cell):
    """The exact overrides of the sweep (preset, encoder, the cell's own keys) compose."""
    experiment, key, values = TASKS[task]
    command = sweep_command(task, [cell], [values[0]], Path("/tmp/unused"))
    overrides = [o for o in command[4:] if not o.startswith("hydra.")]
    cfg = compose_train(*overrides)
    check_targets(cfg)
    encoder = cfg.model.encoder
    if cell == "lstm":
        assert encoder._target_ == "seqmodels.LSTM" and encoder.init == "forget_bias"
    elif cell == "gru":
        assert encoder._target_ == "seqmodels.GRU" and encoder.init == "default"
    elif cell == "irnn":
        assert (encoder.nonlinearity, encoder.init) == ("relu", "identity")
    elif cell == "lnlstm":
        assert encoder._target_ == "seqmodels.LayerNormLSTM"
    elif cell == "indrnn":
        assert (encoder._target_, encoder.nonlinearity) == ("seqmodels.IndRNN", "relu")
    else:
        assert (encoder.nonlinearity, encoder.init) == ("tanh", "default")
    # one budget for every cell: the preset's, the same whichever the encoder
    assert cfg.trainer.gradient_clip_val == 1.0 and cfg.trainer.max_epochs >= 1


def test_cell_overrides_come_before_the_command_line():
    command = sweep_command(
        "adding", ["lstm"], [50, 100], Path("out"), ["model.encoder.init=default"]
    )
    assert command[4:] == [
        "experiment=research_adding",
        "model/encoder=lstm",
        "data.length=50,100",
        "hydra.sweep.dir=out",
        *CELL_OVERRIDES["lstm"],
        "model.encoder.init=default",  # the command line wins (Hydra: last one)
    ]
    assert "model.encoder.init=forget_bias" in CELL_OVERRIDES["lstm"]
    plain = sweep_command("copy_memory", ["tanh", "gru"], [20], Path("out"))
    assert plain[4:] == [
        "experiment=research_copy",
        "model/encoder=elman,gru",
        "data.delay=20",
        "hydra.sweep.dir=out",
    ]
    with pytest.raises(ValueError, match="one sweep per cell"):
        sweep_command("adding", ["tanh", "lstm"], [50], Path("out"))


def _fake_sweep(folder: Path, encoder: str, key: str, values, losses):
    jobs = []
    for i, (value, loss) in enumerate(zip(values, losses, strict=True)):
        run_dir = folder / str(i)
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(
            json.dumps({"metrics": {"val/loss": loss}, "wall_time_s": 3.0, "global_step": 7})
        )
        jobs.append(
            {
                "job": i,
                "overrides": [f"model/encoder={encoder}", f"{key}={value}"],
                "run_dir": str(run_dir),
                "status": "COMPLETED",
            }
        )
    (folder / "sweep_summary.json").write_text(json.dumps({"jobs": jobs}))


def test_collect_reads_one_multirun_per_cell_in_cell_order(tmp_path):
    _fake_sweep(tmp_path / "lstm", "lstm", "data.length", [100, 50], [0.01, 0.02])
    _fake_sweep(tmp_path / "tanh", "elman", "data.length", [50], [0.17])
    rows = collect("adding", tmp_path)
    assert [(r["cell"], r["T"]) for r in rows] == [("tanh", 50), ("lstm", 50), ("lstm", 100)]
    assert [r["val_loss"] for r in rows] == [0.17, 0.02, 0.01]
    assert all(r["steps"] == 7 and r["wall_s"] == 3.0 for r in rows)
    # the old layout (one multirun of every cell in the task's folder) still reads
    old = tmp_path / "old"
    _fake_sweep(old, "gru", "data.delay", [20], [0.4])
    assert [(r["cell"], r["T"]) for r in collect("copy_memory", old)] == [("gru", 20)]


def test_a_diverged_job_is_a_row_and_the_table_is_written(tmp_path):
    """A job whose loss went NaN (summaries write it as text) is a row, not a crash."""
    _fake_sweep(tmp_path / "indrnn", "indrnn", "data.length", [500, 1000], ["nan", 0.17])
    rows = collect("adding", tmp_path)
    assert math.isnan(rows[0]["val_loss"]) and verdict(rows[0]) == "no loss"
    table = to_markdown(rows)
    assert "| adding | 500 | indrnn | nan |" in table and "| 0.1700 |" in table


def test_verdicts_against_the_exact_baselines():
    assert baseline("adding", 100) == pytest.approx(1 / 6)
    assert baseline("copy_memory", 20) == pytest.approx(10 * math.log(8) / 40)

    def row(task, t, loss):
        return {"task": task, "T": t, "val_loss": loss, "baseline": baseline(task, t)}

    assert verdict(row("adding", 50, 0.01)) == "**learned**"
    assert verdict(row("adding", 50, 0.16)) == "at baseline"
    assert verdict(row("copy_memory", 20, 0.9 * 0.5 * baseline("copy_memory", 20))) == (
        "**learned**"
    )
    assert verdict(row("copy_memory", 20, 0.95 * baseline("copy_memory", 20))) == ("below baseline")
    assert verdict({**row("adding", 50, None), "status": "FAILED"}) == "FAILED"


def test_unknown_cells_fail_before_any_job(tmp_path):
    with pytest.raises(ValueError, match="unknown cells"):
        research.run(tmp_path, cells=["lstm", "transformer"])
    assert not (tmp_path / "adding").exists()
