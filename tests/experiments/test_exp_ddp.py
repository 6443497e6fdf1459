"""trainer=ddp_cpu: two CPU processes (ddp_spawn) reach what one process reaches."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import TINY, compose_cfg

from seqmodels.cli.train import train

# 64 validation sequences in batches of 16: each of the two ranks validates 32 of them, with
# no padding by the distributed sampler, so metric syncing can be checked exactly.
ADDING = [
    "experiment=adding",
    "data.length=10",
    "data.n_train=128",
    "data.n_val=64",
    "data.n_test=64",
    "data.batch_size=16",
    "model.encoder.hidden_size=8",
    "callbacks.rich_progress_bar=null",
    "callbacks.early_stopping=null",
]


def test_ddp_cpu_matches_one_process(tmp_path):
    def run(name: str, *extra: str) -> dict[str, float]:
        cfg = compose_cfg(
            "train", [*ADDING, *extra, f"paths.output_dir={tmp_path / name}"], tmp_path
        )
        metrics, _ = train(cfg)
        return metrics

    # The same initial weights validated by 1 and by 2 processes: identical up to float error.
    one = run("one_untrained", "train=false", "trainer=cpu")
    two = run("two_untrained", "train=false", "trainer=ddp_cpu")
    assert two["val/loss"] == pytest.approx(one["val/loss"], rel=1e-5)

    # Trained for 2 epochs: 2 ranks x 16 per step vs 1 x 32 per step over the same data
    # (in another order). The last validation of the fit is compared (test=false: no re-spawn).
    one = run("one", "trainer=cpu", "trainer.max_epochs=2", "data.batch_size=32", "test=false")
    two = run("two", "trainer=ddp_cpu", "trainer.max_epochs=2", "test=false")
    # Stated tolerance: 0.02 in MSE (the targets' variance is 1/6 ~ 0.167).
    assert abs(two["val/loss"] - one["val/loss"]) < 0.02


def test_ddp_spawn_main_process_model_has_the_vocabulary(tmp_path):
    """Under ddp_spawn the task's setup() runs in the workers only: the model in this process
    gets the data's vocabulary from train() itself, so it generates after the fit."""
    cfg = compose_cfg(
        "train",
        [
            *TINY["char_lm"],
            "trainer=ddp_cpu",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "test=false",
            "callbacks.rich_progress_bar=null",
            "callbacks.ngram_baseline=null",
            "report.sample.max_new_tokens=5",
            f"paths.output_dir={tmp_path / 'lm'}",
        ],
        tmp_path,
    )
    _, objects = train(cfg)
    model, datamodule = objects["model"], objects["datamodule"]
    assert model.vocab == datamodule.vocab.state_dict()
    assert model.hparams["vocab"] == model.vocab
    assert [s["prompt"] for s in objects["samples"]] == list(cfg.report.sample.prompts)
    assert all(isinstance(s["generated"], str) and s["generated"] for s in objects["samples"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_trainer_config(tmp_path):
    cfg = compose_cfg(
        "train",
        [*ADDING, "trainer=gpu", "trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'g'}"],
        tmp_path,
    )
    metrics, objects = train(cfg)
    assert objects["trainer"].strategy.root_device.type == "cuda"
    assert metrics["val/loss"] < 1.0


def test_ddp_run_reports_its_progress_history_and_checkpoint_metrics(tmp_path):
    """A 2-process run (default callbacks, fit + validate + test): summary.json counts its
    epochs and steps, metrics.csv keeps the training history after the test phase, and the
    reported val/loss is what one process measures on the same checkpoint: with an odd
    number of validation examples too (no example counted twice)."""
    from seqmodels.cli.evaluate import evaluate

    out = tmp_path / "ddp"
    cfg = compose_cfg(
        "train",
        [
            *ADDING[:-2],
            "trainer=ddp_cpu",
            "trainer.max_epochs=2",
            "data.n_val=65",
            f"paths.output_dir={out}",
        ],
        tmp_path,
    )
    metrics, _ = train(cfg)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["global_step"] == 2 * 128 // (2 * 16)
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["epoch"] for r in rows if r.get("val/loss")} >= {"0", "1"}  # training history
    assert any(r.get("test/loss") for r in rows)  # and the test phase, appended
    one = evaluate(compose_cfg("eval", [f"ckpt_path={out}", "split=val", "trainer=cpu"], tmp_path))
    assert metrics["val/loss"] == pytest.approx(one["val/loss"], rel=1e-5)


def test_spawn_strategy_teardown_ends_the_process_group(tmp_path):
    """At the end of a phase each worker waits for the others, then destroys its group, so
    no gloo group is left for interpreter exit to tear down (one rank here: the same calls)."""
    import torch.distributed as dist
    from lightning.pytorch.accelerators import CPUAccelerator
    from lightning.pytorch.plugins.environments import LightningEnvironment

    from seqmodels.experiment.distributed import SpawnDDPStrategy

    strategy = SpawnDDPStrategy(
        accelerator=CPUAccelerator(), cluster_environment=LightningEnvironment()
    )
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        strategy.teardown()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
