"""--multirun: one run directory per job; a failed trial is reported and spares the others."""

from __future__ import annotations

import json

import pytest
from conftest import NEEDS_OPTUNA, run_cli

TINY_ADDING = [
    "experiment=adding",
    "data.length=8",
    "data.n_train=64",
    "data.n_val=32",
    "data.n_test=32",
    "model.encoder.hidden_size=8",
    "trainer.max_epochs=1",
    "callbacks.rich_progress_bar=null",
]


def _sweep_dir(tmp_path):
    [sweep] = list((tmp_path / "logs" / "adding" / "multiruns").iterdir())
    return sweep


def test_multirun_grid_gives_each_job_its_directory(tmp_path):
    result = run_cli("seqmodels.cli.train", "-m", *TINY_ADDING, "seed=1,2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = _sweep_dir(tmp_path)
    summaries = [json.loads((sweep / str(i) / "summary.json").read_text()) for i in (0, 1)]
    assert [s["seed"] for s in summaries] == [1, 2]
    assert summaries[0]["metrics"]["val/loss"] != summaries[1]["metrics"]["val/loss"]
    jobs = json.loads((sweep / "sweep_summary.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["COMPLETED", "COMPLETED"]
    assert jobs[0]["result"] == pytest.approx(summaries[0]["metrics"]["val/loss"])


def test_failed_trial_is_reported_and_spares_the_others(tmp_path):
    # A negative learning rate makes Adam refuse: the second job fails, the first finishes.
    result = run_cli(
        "seqmodels.cli.train", "-m", *TINY_ADDING, "model.optimizer.lr=0.01,-1", cwd=tmp_path
    )
    assert result.returncode != 0
    sweep = _sweep_dir(tmp_path)
    jobs = json.loads((sweep / "sweep_summary.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["COMPLETED", "FAILED"]
    assert "Invalid learning rate" in jobs[1]["error"]
    assert (sweep / "0" / "summary.json").is_file()
    assert (sweep / "0" / "checkpoints" / "last.ckpt").is_file()
    assert "Invalid learning rate" in (sweep / "1" / "error.txt").read_text()
    assert "FAILED" in result.stdout


@NEEDS_OPTUNA
def test_optuna_sweep_survives_a_failed_trial(tmp_path):
    # A search space that holds a value Adam refuses (the shipped char_lm_optuna config is
    # composed in test_exp_configs): the failing trials are recorded as FAIL, the study goes on.
    extra = tmp_path / "extra_conf" / "hparams_search"
    extra.mkdir(parents=True)
    (extra / "tiny_optuna.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /hydra/sweeper: optuna\n"
        "optimized_metric: val/loss\n"
        "hydra:\n  mode: MULTIRUN\n  sweeper:\n    n_trials: 4\n    n_jobs: 1\n"
        "    max_failure_rate: 1.0\n"
        "    direction: minimize\n"
        "    sampler:\n      seed: 1\n      n_startup_trials: 4\n"
        "    params:\n      model.optimizer.lr: choice(0.01, -1.0)\n"
    )
    result = run_cli(
        "seqmodels.cli.train",
        f"hydra.searchpath=[file://{tmp_path / 'extra_conf'}]",
        "hparams_search=tiny_optuna",
        *TINY_ADDING,
        cwd=tmp_path,
    )
    sweep = _sweep_dir(tmp_path)
    jobs = json.loads((sweep / "sweep_summary.json").read_text())["jobs"]
    assert len(jobs) == 4, result.stderr[-3000:]
    statuses = {j["status"] for j in jobs}
    # Seed 1 draws lr = -1, -1, 0.01, -1 (TPE's random start-up trials).
    assert statuses == {"COMPLETED", "FAILED"}, result.stderr[-3000:]
    assert "Failed experiment" in result.stdout + result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert (sweep / "optimization_results.yaml").is_file()
