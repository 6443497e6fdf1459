"""Every experiment runs end to end with debug=fast_dev_run (one batch per stage)."""

from __future__ import annotations

import math

import pytest
from conftest import EXPERIMENTS, TINY

from seqmodels.cli.train import train


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(experiment, compose_train):
    cfg = compose_train(f"experiment={experiment}", "debug=fast_dev_run", *TINY[experiment])
    metrics, objects = train(cfg)
    assert "val/loss" in metrics and "test/loss" in metrics
    assert math.isfinite(metrics["val/loss"])
    assert (objects["output_dir"] / "summary.json").is_file()
    assert (objects["output_dir"] / "config.yaml").is_file()


@pytest.mark.parametrize("encoder", ["generic", "torch_rnn"])
def test_other_encoders_fast_dev_run(encoder, compose_train):
    cfg = compose_train(
        "experiment=tagging", f"model/encoder={encoder}", "debug=fast_dev_run", *TINY["tagging"]
    )
    metrics, objects = train(cfg)
    assert math.isfinite(metrics["val/loss"])


def test_autograd_backend_fast_dev_run(compose_train):
    cfg = compose_train("debug=fast_dev_run", "model.encoder.backend=autograd", *TINY["char_lm"])
    metrics, _ = train(cfg)
    assert math.isfinite(metrics["val/bpc"])
