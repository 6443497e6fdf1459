"""Evaluate a checkpoint on one split: ``seqmodels-eval ckpt_path=RUN_DIR_OR_CKPT split=test``.

:func:`evaluate` rebuilds the task from the checkpoint and the data from the run's saved
``config.yaml`` (vocabularies from the checkpoint), runs Lightning's validation or test loop
and returns the metrics; the command prints them and writes ``eval.json`` in its own run
directory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from seqmodels.experiment.entry import CONFIG_PATH, run_main
from seqmodels.experiment.runs import load_run, require_ckpt_path
from seqmodels.experiment.summary import scalar_metrics, write_json

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Metrics of ``cfg.ckpt_path`` on ``cfg.split``, named ``<split>/<metric>``."""
    if cfg.split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {cfg.split!r}")
    ckpt_path = require_ckpt_path(cfg, "seqmodels-eval")
    run = load_run(ckpt_path, cfg.paths.get("runs_dir"), cfg.get("name"))
    log.info("Evaluating %s on %s", run.ckpt_path, cfg.split)
    model = run.load_model()
    datamodule = run.datamodule(cfg.get("data"))
    datamodule.setup("fit" if cfg.split != "test" else "test")
    saved_trainer = run.cfg.get("trainer", {})
    trainer = instantiate(
        cfg.trainer,
        logger=False,
        callbacks=[],
        use_distributed_sampler=saved_trainer.get("use_distributed_sampler", True),
    )
    if cfg.split == "test":
        results = trainer.test(model, datamodule=datamodule)
    elif cfg.split == "val":
        results = trainer.validate(model, datamodule=datamodule)
    else:  # the training split through the validation loop: metrics come out as val/*
        results = trainer.validate(model, dataloaders=datamodule.train_dataloader())
    metrics = scalar_metrics(results)
    if cfg.split == "train":
        metrics = {k.replace("val/", "train/", 1): v for k, v in metrics.items()}
    if trainer.is_global_zero:
        out = Path(cfg.paths.output_dir)
        write_json(
            out / "eval.json",
            {"checkpoint": str(run.ckpt_path), "split": cfg.split, "metrics": metrics},
        )
        for key, value in metrics.items():
            print(f"{key}: {value:.4f}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    evaluate(cfg)


def main() -> None:
    """Console entry point ``seqmodels-eval``."""
    run_main(_hydra_main)


if __name__ == "__main__":
    main()
