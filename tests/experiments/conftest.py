"""Fixtures of the experiment tests: compose ``seqmodels/conf`` like Hydra does, with tiny sizes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from seqmodels.experiment.entry import CONFIG_MODULE
from seqmodels.experiment.schema import register_configs

REPO = Path(__file__).resolve().parents[2]


def module_available(name: str) -> bool:
    """Whether ``name`` can be imported, False also when a parent package is missing.

    ``importlib.util.find_spec("a.b")`` imports ``a`` first and raises ModuleNotFoundError
    when ``a`` is absent (e.g. ``hydra_plugins`` without the ``sweep`` extra), instead of
    returning None; a skip condition built on it would error at collection.
    """
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


#: The Optuna sweeper comes with the ``sweep`` extra only.
HAS_OPTUNA = module_available("hydra_plugins.hydra_optuna_sweeper")
NEEDS_OPTUNA = pytest.mark.skipif(
    not HAS_OPTUNA, reason="the Optuna sweeper is an extra: pip install 'seqmodels[sweep]'"
)

#: Every experiment, with overrides that make it tiny (the data are the real embedded sets).
TINY = {
    "char_lm": [
        "model.encoder.hidden_size=16",
        "model.embedding_dim=8",
        "data.max_length=32",
        "data.batch_size=16",
    ],
    "word_lm": [
        "model.encoder.hidden_size=16",
        "model.embedding_dim=8",
        "data.batch_size=16",
    ],
    "adding": ["model.encoder.hidden_size=8", "data.n_train=64", "data.n_val=32", "data.n_test=32"],
    "copy_memory": [
        "model.encoder.hidden_size=8",
        "data.n_train=64",
        "data.n_val=32",
        "data.n_test=32",
    ],
    "classification": ["model.encoder.hidden_size=8", "model.embedding_dim=4"],
    "tagging": ["model.encoder.hidden_size=8", "model.embedding_dim=4"],
    "seq2seq": [
        "model.encoder.hidden_size=8",
        "model.decoder_cell.hidden_size=8",
        "data.limit=300",
        "data.batch_size=8",
    ],
    "forecasting": ["model.encoder.hidden_size=8"],
}
EXPERIMENTS = sorted(TINY)


def compose_cfg(config_name: str, overrides: list[str], tmp_path: Path) -> DictConfig:
    """Compose ``<config_name>.yaml`` as ``@hydra.main`` would, writing under tmp_path."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    # ${hydra:...} interpolations resolve against this, as in a real run.
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.log_dir = str(tmp_path / "logs")
        if not any(o.startswith("paths.output_dir=") for o in overrides):
            cfg.paths.output_dir = str(tmp_path / "run")
        del cfg["hydra"]
    return cfg


@pytest.fixture
def compose_train(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_train(*overrides)`` -> the train config of a run in ``tmp_path/run``."""

    def _compose(*overrides: str) -> DictConfig:
        return compose_cfg("train", list(overrides), tmp_path)

    return _compose


def run_cli(
    module: str, *args: str, cwd: Path, timeout: float = 240
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args`` as a user would, logs under ``cwd``."""
    env = {**os.environ, "SEQMODELS_LOG_DIR": str(cwd / "logs"), "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
