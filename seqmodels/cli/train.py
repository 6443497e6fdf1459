"""Train any experiment: ``seqmodels-train experiment=NAME [key=value ...]``.

``python -m seqmodels.cli.train`` runs the default experiment (``char_lm``); every experiment
differs only in config (``seqmodels/conf``). :func:`train` is the plain function behind the
command: tests and notebooks call it with a composed config.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from seqmodels.experiment.checkpoints import find_last_checkpoint, resolve_ckpt_path
from seqmodels.experiment.entry import CONFIG_PATH, run_main
from seqmodels.experiment.instantiate import (
    config_info,
    data_info,
    instantiate_callbacks,
    instantiate_loggers,
    instantiate_model,
)
from seqmodels.experiment.summary import (
    format_report,
    lm_samples,
    scalar_metrics,
    seq2seq_samples,
    write_json,
)
from seqmodels.experiment.validate import check_targets
from seqmodels.tasks.base import read_checkpoint

log = logging.getLogger(__name__)


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        if Path(callback.best_model_path).is_file():
            return callback.best_model_path
    return None


def _progress(trainer: L.Trainer) -> dict[str, int]:
    """Epochs trained and optimizer steps taken.

    Under ``ddp_spawn`` the fit runs in child processes and this process's trainer keeps
    ``current_epoch = global_step = 0``: the counts are read from the run's last checkpoint
    (saved after the last validation, so its ``epoch`` is the last epoch's index).
    """
    epochs, step = trainer.current_epoch, trainer.global_step
    callback = trainer.checkpoint_callback
    if step == 0 and isinstance(callback, ModelCheckpoint) and callback.dirpath:
        last = find_last_checkpoint(callback.dirpath)
        if last is not None:
            checkpoint = read_checkpoint(last)
            epochs = int(checkpoint.get("epoch", -1)) + 1
            step = int(checkpoint.get("global_step", 0))
    return {"epochs": epochs, "global_step": step}


def _relative(path: str | None, root: Path) -> str | None:
    """``path`` relative to ``root`` when it lies inside it, else as given."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _samples(model: Any, datamodule: Any, options: Any) -> list[dict[str, str]]:
    """Generated text (language models) or decoded examples (encoder-decoders)."""
    if not options.get("enabled", True):
        return []
    if hasattr(model, "generate"):
        return lm_samples(model, options)
    if hasattr(model, "decode") and hasattr(datamodule, "target_vocab"):
        return seq2seq_samples(model, datamodule, int(options.get("num_examples", 5)))
    return []


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit the experiment ``cfg`` describes, test its best checkpoint, report and summarise.

    Returns ``(metrics, objects)``: ``metrics`` maps names (``val/loss``, ``test/bpc``, ...)
    to floats, measured on the best checkpoint when there is one; ``objects`` holds the
    ``cfg``, ``datamodule``, ``model``, ``trainer``, ``callbacks``, ``loggers``, ``samples``
    and ``output_dir``. The run directory (``paths.output_dir``) receives ``config.yaml``
    (resolved), ``checkpoints/``, ``metrics.csv`` and ``summary.json``.
    """
    started = time.perf_counter()
    check_targets(cfg)  # a misspelt data/model/callback key fails here, before any work
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    log.info("Instantiating data <%s>", cfg.data._target_)
    datamodule: L.LightningDataModule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    info = data_info(datamodule)  # sizes, ids and vocabulary of the set-up data, plain data
    with open_dict(cfg):
        cfg.data_info = config_info(info)  # what ${data_info.*} in model configs reads

    log.info("Instantiating model <%s>", cfg.model._target_)
    model = instantiate_model(cfg.model, info)  # the model stores them as hyper-parameters

    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"))
    if not loggers and not cfg.trainer.get("fast_dev_run"):
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    ckpt_path = resolve_ckpt_path(
        cfg.get("ckpt_path"), output_dir, cfg.paths.get("runs_dir"), cfg.get("name")
    )
    if ckpt_path:
        read_checkpoint(ckpt_path)  # plain data only: a bad file fails here, naming itself
    fit_metrics: dict[str, float] = {}
    if cfg.get("train", True):
        if ckpt_path:
            log.info("Resuming from %s", ckpt_path)
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        fit_metrics = scalar_metrics(trainer.callback_metrics)

    eval_metrics: dict[str, float] = {}
    if cfg.get("test", True):
        best = _best_checkpoint(trainer) or (None if cfg.get("train", True) else ckpt_path)
        if best is None:
            log.warning("No checkpoint to test: using the current weights")
        val = trainer.validate(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
        test = trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
        eval_metrics = scalar_metrics(val, test)
    metrics = {**fit_metrics, **eval_metrics}

    samples = _samples(model, datamodule, cfg.report.sample) if trainer.is_global_zero else []
    if trainer.is_global_zero:
        summary = {
            "experiment": cfg.get("name"),
            "seed": cfg.get("seed"),
            "optimized_metric": cfg.get("optimized_metric"),
            "metrics": metrics,
            # Relative to the run directory: a copied or moved run finds its own files.
            "best_checkpoint": _relative(_best_checkpoint(trainer), output_dir),
            "resumed_from": ckpt_path,
            **_progress(trainer),
            "wall_time_s": round(time.perf_counter() - started, 2),
            "samples": samples,
        }
        write_json(output_dir / "summary.json", summary)
        report = format_report(metrics, cfg.report.get("metrics") or [], samples)
        if report:
            rank_zero_only(print)(f"\n{report}\n")
        log.info("Run directory: %s", output_dir)

    objects = {
        "cfg": cfg,
        "datamodule": datamodule,
        "model": model,
        "trainer": trainer,
        "callbacks": callbacks,
        "loggers": loggers,
        "samples": samples,
        "output_dir": output_dir,
    }
    return metrics, objects


def optimized_value(metrics: dict[str, float], cfg: DictConfig) -> float | None:
    """The value a sweeper minimises/maximises: ``metrics[cfg.optimized_metric]``."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        raise KeyError(
            f"optimized_metric {name!r} was not logged; logged metrics: {', '.join(metrics)}"
        )
    return metrics[name]


def _record_failure(cfg: DictConfig, err: BaseException) -> None:
    """Leave ``error.txt`` in the run directory: a sweep's failed trial explains itself."""
    try:
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.txt").write_text("".join(traceback.format_exception(err)))
    except Exception:  # noqa: BLE001 - reporting must never hide the original error
        pass


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    try:
        metrics, _ = train(cfg)
    except Exception as err:
        _record_failure(cfg, err)
        raise
    return optimized_value(metrics, cfg)


def main() -> None:
    """Console entry point ``seqmodels-train``."""
    run_main(_hydra_main)


if __name__ == "__main__":
    main()
