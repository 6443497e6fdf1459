"""Run directories: unique (atomically, across processes), self-contained when copied, and
``ckpt_path=last`` / resume / short runs with the default callbacks (early stopping included)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from conftest import REPO, TINY, compose_cfg, run_cli

from seqmodels.cli.evaluate import evaluate
from seqmodels.cli.train import train
from seqmodels.experiment.checkpoints import resolve_ckpt_path
from seqmodels.experiment.rundirs import make_unique_dir
from seqmodels.experiment.runs import load_run

# The adding experiment with its default callbacks (early stopping, checkpoints, progress bar,
# resume state) and default trainer, only smaller data: 8 training batches per epoch.
ADDING = [
    "experiment=adding",
    *TINY["adding"],
    "data.length=10",
    "data.batch_size=8",
    "trainer.accelerator=cpu",
]


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _rows(path: Path) -> list[dict[str, str]]:
    """metrics.csv's rows without their empty cells (a later header may add columns)."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if v} for row in csv.DictReader(f)]


def _only_run_dir(logs: Path) -> Path:
    [run_dir] = [p for p in (logs / "adding" / "runs").iterdir() if p.is_dir()]
    return run_dir


def test_a_run_shorter_than_one_epoch_ends_cleanly(tmp_path):
    """trainer.max_steps below one epoch: no validation ran at the stop, and EarlyStopping
    (default config) must not fail with 'metric val/loss not available'."""
    cfg = compose_cfg("train", [*ADDING, "trainer.max_steps=3"], tmp_path)
    assert cfg.callbacks.early_stopping is not None
    metrics, objects = train(cfg)
    assert objects["trainer"].global_step == 3
    assert "test/loss" in metrics


def test_killed_run_resumed_with_ckpt_path_last_matches_an_uninterrupted_run(tmp_path):
    """SIGKILL a real training process mid-epoch, resume it as the README says
    (``seqmodels-train ... ckpt_path=last``): the same final metrics as a run never killed."""
    args = [*ADDING, "trainer.max_epochs=3"]
    full = run_cli("seqmodels.cli.train", *args, cwd=tmp_path / "full")
    assert full.returncode == 0, full.stderr[-3000:]

    env_path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"], old = env_path, os.environ.get("PYTHONPATH")
    try:
        killed = run_cli(
            "seqmodels.cli.train",
            *args,
            "+callbacks.kill._target_=killer.SigkillAt",
            "+callbacks.kill.epoch=2",
            "+callbacks.kill.batch=3",
            cwd=tmp_path / "killed",
        )
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    killed_dir = _only_run_dir(tmp_path / "killed" / "logs")
    assert not (killed_dir / "summary.json").exists()

    resumed = run_cli("seqmodels.cli.train", *args, "ckpt_path=last", cwd=tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    [resumed_dir] = [
        p for p in (tmp_path / "killed" / "logs" / "adding" / "runs").iterdir() if p != killed_dir
    ]
    got, want = _summary(resumed_dir), _summary(_only_run_dir(tmp_path / "full" / "logs"))
    assert Path(got["resumed_from"]).is_relative_to(killed_dir)
    assert got["epochs"] == want["epochs"] == 3
    assert got["global_step"] == want["global_step"]
    for key in ("val/loss", "test/loss", "train/loss"):
        assert got["metrics"][key] == pytest.approx(want["metrics"][key], rel=1e-5), key


_RACER = """
import sys, time
from pathlib import Path
barrier = Path(sys.argv[1])
from seqmodels.cli.train import main  # import first: both start the run at the same moment
while not barrier.exists():
    time.sleep(0.001)
sys.argv = ["seqmodels-train", *sys.argv[2:]]
main()
"""


def test_two_runs_started_at_the_same_moment_get_two_directories(tmp_path):
    """Two real processes released together by a barrier file, with the default run-directory
    resolver over the same base name (as two runs started in the same second have): two
    distinct directories, each with its own complete files."""
    barrier = tmp_path / "go"
    base = f"{tmp_path}/logs/adding/runs/same-second"
    args = [*ADDING, "trainer.max_epochs=1", f"hydra.run.dir=${{seqmodels.run_dir:{base}}}"]
    env = {**os.environ, "SEQMODELS_LOG_DIR": str(tmp_path / "logs")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(barrier), *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(8)  # both have imported and wait at the barrier
    barrier.touch()
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    dirs = sorted(p for p in (tmp_path / "logs" / "adding" / "runs").iterdir())
    assert [d.name for d in dirs] == ["same-second", "same-second_2"]
    for d in dirs:
        summary = _summary(d)
        assert summary["epochs"] == 1
        assert (d / summary["best_checkpoint"]).is_file()
        assert (d / "config.yaml").is_file() and (d / "metrics.csv").is_file()
        header = (d / "metrics.csv").read_text().splitlines()[0]
        assert "val/loss" in header


def test_make_unique_dir_is_exclusive(tmp_path):
    made = [make_unique_dir(str(tmp_path / "r")) for _ in range(3)]
    assert made == [str(tmp_path / "r"), str(tmp_path / "r_2"), str(tmp_path / "r_3")]


def test_a_copied_run_directory_evaluates_its_own_files(tmp_path):
    original = tmp_path / "original"
    train(
        compose_cfg(
            "train", [*ADDING, "trainer.max_epochs=1", f"paths.output_dir={original}"], tmp_path
        )
    )
    best = _summary(original)["best_checkpoint"]
    assert not Path(best).is_absolute()
    copy = tmp_path / "moved" / "copy"
    shutil.copytree(original, copy)
    before = {p: p.stat().st_mtime_ns for p in original.rglob("*")}
    run = load_run(str(copy))
    assert run.ckpt_path == copy / best and run.run_dir == copy
    # The original gone: the copy still evaluates, from its own checkpoint and config.
    original.rename(tmp_path / "elsewhere")
    metrics = evaluate(compose_cfg("eval", [f"ckpt_path={copy}"], tmp_path))
    assert "test/loss" in metrics
    (tmp_path / "elsewhere").rename(original)
    assert {p: p.stat().st_mtime_ns for p in original.rglob("*")} == before


def test_ckpt_path_last_searches_only_this_experiments_runs(tmp_path):
    logs = tmp_path / "logs"
    mine = logs / "adding" / "runs" / "t1"
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "config.yaml").write_text("name: adding\n")
    (mine / "checkpoints" / "last.ckpt").write_bytes(b"x")
    time.sleep(0.01)
    # Newer, but not a run of this experiment: another experiment's copy, a stray file.
    other = logs / "adding" / "runs" / "t2"
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.yaml").write_text("name: copy_memory\n")
    (other / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (logs / "adding" / "stray").mkdir()
    (logs / "adding" / "stray" / "last.ckpt").write_bytes(b"x")
    found = resolve_ckpt_path("last", tmp_path / "new_run", logs / "adding", "adding")
    assert found == str(mine / "checkpoints" / "last.ckpt")


def test_no_log_file_is_deleted_and_lightning_does_not_warn(tmp_path):
    """Lightning's CSVLogger deletes metrics.csv when its directory is not empty (and warns so
    on every run). A run resumed in its own directory keeps the first part's history."""
    out = tmp_path / "run"
    small = [*ADDING, f"paths.output_dir={out}", "callbacks.rich_progress_bar=null"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(compose_cfg("train", [*small, "trainer.max_epochs=1"], tmp_path))
        first = _rows(out / "metrics.csv")
        train(compose_cfg("train", [*small, "trainer.max_epochs=2", "ckpt_path=last"], tmp_path))
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]
    rows = _rows(out / "metrics.csv")
    assert len(rows) > len(first) and rows[: len(first)] == first  # history kept, then more


def test_the_processes_of_one_ddp_run_share_one_run_directory(tmp_path):
    """trainer=ddp starts its second rank as a new process running the same command: it must
    write into the directory rank 0 made, not make one of its own."""
    result = run_cli(
        "seqmodels.cli.train",
        *ADDING,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",
        "trainer.max_epochs=1",
        "callbacks.rich_progress_bar=null",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = _only_run_dir(tmp_path / "logs")
    summary = _summary(run_dir)
    assert summary["epochs"] == 1 and (run_dir / summary["best_checkpoint"]).is_file()
