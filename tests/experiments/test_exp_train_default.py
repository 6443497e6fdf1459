"""`make train`'s default experiment, shortened: the run directory holds what the issue lists."""

from __future__ import annotations

import csv
import json

from conftest import run_cli


def test_default_experiment_writes_its_run_directory(tmp_path):
    result = run_cli(
        "seqmodels.cli.train",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=3",
        "trainer.limit_test_batches=3",
        "model.encoder.hidden_size=32",
        "report.sample.max_new_tokens=40",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "logs" / "char_lm" / "runs").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert (run / "config.yaml").is_file() and (run / ".hydra" / "config.yaml").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("epoch_*.ckpt"))) == 1
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert any(row.get("val/bpc") for row in rows)
    summary = json.loads((run / "summary.json").read_text())
    for key in ("val/bpc", "val/ngram_bpc", "test/bpc", "val/loss"):
        assert key in summary["metrics"], key
    assert summary["experiment"] == "char_lm" and summary["epochs"] == 2
    assert [s["prompt"] for s in summary["samples"]] == ["The ", "def "]
    assert all(len(s["generated"]) > 0 for s in summary["samples"])
    # The closing report: bits per character next to the n-gram baseline, then a sample.
    assert "validation bits per character:" in result.stdout
    assert "4-gram baseline" in result.stdout
    assert "--- sample (prompt 'The ')" in result.stdout
