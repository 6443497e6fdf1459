"""Every config group composes; misspelt keys and missing checkpoints fail with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXPERIMENTS, NEEDS_OPTUNA, compose_cfg, run_cli
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from seqmodels.cli.train import train
from seqmodels.experiment import check_targets, explain_config_error, resolve_ckpt_path
from seqmodels.experiment.distributed import SpawnDDPStrategy
from seqmodels.experiment.entry import CONFIG_DIR, CONFIG_MODULE
from seqmodels.experiment.schema import register_configs
from seqmodels.experiment.validate import ConfigKeyError

CONF = Path(CONFIG_DIR)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_experiment_has_a_config():
    assert set(EXPERIMENTS) <= set(_options("experiment"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_targets_accept_their_keys(experiment, tmp_path):
    cfg = compose_cfg("train", [f"experiment={experiment}"], tmp_path)
    assert cfg.name == experiment
    check_targets(cfg)


@pytest.mark.parametrize(
    "override",
    [
        f"{group}={name}"
        for group in ("trainer", "logger", "callbacks", "debug")
        for name in _options(group)
    ]
    + [f"model/encoder={name}" for name in _options("model/encoder")]
    + [f"data={name}" for name in _options("data")],
)
def test_every_group_option_composes(override, tmp_path):
    cfg = compose_cfg("train", [override], tmp_path)
    check_targets(cfg)


@NEEDS_OPTUNA
def test_optuna_search_config_composes(tmp_path):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("train", ["hparams_search=char_lm_optuna"], return_hydra_config=True)
    assert cfg.optimized_metric == "val/bpc"
    assert "model.optimizer.lr" in cfg.hydra.sweeper.params
    assert cfg.hydra.sweeper.max_failure_rate > 0


def test_trainer_configs_switch_devices_only(tmp_path):
    ddp_cpu = compose_cfg("train", ["trainer=ddp_cpu"], tmp_path).trainer
    assert (ddp_cpu.accelerator, ddp_cpu.devices) == ("cpu", 2)
    trainer = instantiate(ddp_cpu, logger=False, enable_checkpointing=False)
    assert isinstance(trainer.strategy, SpawnDDPStrategy)
    assert trainer.strategy._start_method == "spawn" and trainer.strategy.num_processes == 2
    assert compose_cfg("train", [], tmp_path).trainer.accelerator == "auto"
    assert compose_cfg("train", ["trainer=ddp"], tmp_path).trainer.strategy == "ddp"


def test_encoder_swaps_by_config(tmp_path):
    for name, target in [
        ("elman", "seqmodels.ElmanRNN"),
        ("generic", "seqmodels.experiment.generic_encoder"),
        ("torch_rnn", "torch.nn.RNN"),
    ]:
        cfg = compose_cfg("train", [f"model/encoder={name}"], tmp_path)
        assert cfg.model.encoder._target_ == target
        assert cfg.model.encoder.hidden_size == 256  # the experiment's value survives the swap


def test_misspelt_trainer_key_names_the_valid_keys(tmp_path):
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg("train", ["trainer.max_epoch=3"], tmp_path)
    message = explain_config_error(info.value)
    assert "trainer.max_epoch" in message
    assert "max_epochs" in message and "valid keys" in message


def test_misspelt_data_key_fails_before_training(compose_train):
    cfg = compose_train("experiment=adding", "+data.batch_sise=8")
    with pytest.raises(ConfigKeyError, match="batch_sise.*did you mean 'batch_size'"):
        train(cfg)


def test_misspelt_key_in_an_experiment_file_is_caught(compose_train):
    cfg = compose_train("+model.encoder.hiden_size=8")
    with pytest.raises(ConfigKeyError) as info:
        check_targets(cfg)
    assert "model.encoder.hiden_size" in str(info.value) and "hidden_size" in str(info.value)


def test_cli_typo_fails_at_start_with_valid_keys(tmp_path):
    result = run_cli("seqmodels.cli.train", "trainer.max_epoch=3", cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert "unknown config key 'trainer.max_epoch'" in result.stderr
    assert "did you mean 'max_epochs'" in result.stderr
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*.ckpt"))


def test_missing_checkpoint_fails_clearly(tmp_path, compose_train):
    with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
        resolve_ckpt_path(str(tmp_path / "nope.ckpt"), tmp_path)
    with pytest.raises(FileNotFoundError, match="ckpt_path=last: no checkpoint"):
        resolve_ckpt_path("last", tmp_path / "run", tmp_path / "runs")
    cfg = compose_train("experiment=adding", f"ckpt_path={tmp_path / 'missing.ckpt'}")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        train(cfg)
