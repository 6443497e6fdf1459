"""seqmodels-eval and seqmodels-sample on checkpoints written by seqmodels-train."""

from __future__ import annotations

import json

import pytest
from conftest import TINY, compose_cfg, run_cli

from seqmodels.cli.evaluate import evaluate
from seqmodels.cli.sample import sample
from seqmodels.cli.train import train
from seqmodels.experiment.summary import lm_samples


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm")
    overrides = [
        *TINY["char_lm"],
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
        "callbacks.rich_progress_bar=null",
        "report.sample.max_new_tokens=5",
        f"paths.output_dir={tmp / 'run'}",
    ]
    metrics, objects = train(compose_cfg("train", overrides, tmp))
    return tmp / "run", metrics


def test_eval_cli_reproduces_the_test_metrics(lm_run, tmp_path):
    run_dir, metrics = lm_run
    # The training run tested on 2 batches: evaluate the same 2.
    result = run_cli(
        "seqmodels.cli.evaluate",
        f"ckpt_path={run_dir}",
        "trainer.limit_test_batches=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [out] = list((tmp_path / "logs" / "eval" / "runs").glob("*/eval.json"))
    evaluated = json.loads(out.read_text())["metrics"]
    assert evaluated["test/bpc"] == pytest.approx(metrics["test/bpc"], rel=1e-5)
    assert "test/bpc:" in result.stdout


def test_sample_cli_generates_text(lm_run, tmp_path):
    run_dir, _ = lm_run
    result = run_cli(
        "seqmodels.cli.sample",
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "prompts=['def ']",
        "max_new_tokens=20",
        "temperature=0.5",
        "top_k=5",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [out] = list((tmp_path / "logs" / "sample" / "runs").glob("*/samples.json"))
    [s] = json.loads(out.read_text())["samples"]
    assert s["prompt"] == "def " and len(s["generated"]) > 0
    assert "--- prompt 'def ' ---" in result.stdout


def test_eval_on_validation_split_and_seeded_sampling(lm_run, tmp_path):
    run_dir, metrics = lm_run
    cfg = compose_cfg(
        "eval", [f"ckpt_path={run_dir}", "split=val", "trainer.limit_val_batches=2"], tmp_path
    )
    assert evaluate(cfg)["val/bpc"] == pytest.approx(metrics["val/bpc"], rel=1e-5)
    cfg = compose_cfg("sample", [f"ckpt_path={run_dir}", "max_new_tokens=15"], tmp_path)
    assert sample(cfg) == sample(cfg)  # the seed fixes the sample


def test_lm_samples_draw_one_seed_per_sample_in_order():
    class Recorder:
        vocab = {"tokens": ["a"]}
        seeds: list[tuple[str, int]] = []

        def generate(self, prompt, **options):
            self.seeds.append((prompt, options["seed"]))
            return "."

    model = Recorder()
    samples = lm_samples(model, {"prompts": ["a", "b"], "num_samples": 2, "seed": 7})
    assert model.seeds == [("a", 7), ("a", 8), ("b", 9), ("b", 10)]
    assert [s["prompt"] for s in samples] == ["a", "a", "b", "b"]
    model.seeds.clear()
    lm_samples(model, {"prompts": ["a", "b"], "seed": 7})  # the training report's: one each
    assert model.seeds == [("a", 7), ("b", 8)]
    model.vocab = None
    assert lm_samples(model, {"prompts": ["a"]}) == []


def test_sample_decodes_with_a_seq2seq_checkpoint(tmp_path):
    overrides = [
        "experiment=seq2seq",
        *TINY["seq2seq"],
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "callbacks.rich_progress_bar=null",
        f"paths.output_dir={tmp_path / 'run'}",
    ]
    train(compose_cfg("train", overrides, tmp_path))
    cfg = compose_cfg("sample", [f"ckpt_path={tmp_path / 'run'}", "prompts=[hello]"], tmp_path)
    [s] = sample(cfg)
    assert s["source"] == "hello" and isinstance(s["prediction"], str)


def test_sample_refuses_a_model_that_does_not_generate(tmp_path):
    overrides = [
        "experiment=adding",
        *TINY["adding"],
        "trainer.max_epochs=1",
        "callbacks.rich_progress_bar=null",
        f"paths.output_dir={tmp_path / 'run'}",
    ]
    train(compose_cfg("train", overrides, tmp_path))
    cfg = compose_cfg("sample", [f"ckpt_path={tmp_path / 'run'}"], tmp_path)
    with pytest.raises(ValueError, match="needs a LanguageModel or Seq2Seq checkpoint"):
        sample(cfg)
