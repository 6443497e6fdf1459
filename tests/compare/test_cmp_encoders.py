"""seqmodels-compare mode=training: the encoders are the ones asked for, all checked first."""

import types

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

import seqmodels.cli.train as train_cli
from seqmodels.cli.compare import (
    EncoderConfigError,
    TrainingOptions,
    _as_dataclass,
    register_compare_schema,
    run_training,
)
from seqmodels.diagnostics.throughput import Throughput
from seqmodels.experiment.entry import CONFIG_MODULE


@pytest.fixture
def fake_train(monkeypatch):
    """Replace the training run: record each config, return metrics a real run would."""
    calls = []

    def train(cfg):
        calls.append(cfg)
        meter = Throughput()
        objects = {"callbacks": [meter], "trainer": types.SimpleNamespace(global_step=1)}
        return {"val/loss": 1.0}, objects

    monkeypatch.setattr(train_cli, "train", train)
    monkeypatch.setattr(
        Throughput, "summary", lambda self: {"tokens_per_s": 1.0, "train_step_s": 0.1}
    )
    return calls


def _compare_cfg(*overrides):
    register_compare_schema()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose("compare", overrides=["mode=training", "output_dir=unused", *overrides])


def test_deleting_an_encoder_on_the_command_line_drops_it(tmp_path, fake_train):
    cfg = _compare_cfg("~training.encoders.autograd")
    assert list(cfg.training.encoders) == ["nn_rnn", "bptt", "torch", "auto"]
    assert list(_as_dataclass(cfg.training, TrainingOptions).encoders) == [
        "nn_rnn",
        "bptt",
        "torch",
        "auto",
    ]
    result = run_training(cfg.training, tmp_path)
    assert [row["encoder"] for row in result["rows"]] == ["nn_rnn", "bptt", "torch", "auto"]
    assert len(fake_train) == 4


def test_a_plain_mapping_of_encoders_replaces_the_defaults():
    opts = _as_dataclass({"encoders": {"mine": ["model/encoder=torch_rnn"]}}, TrainingOptions)
    assert list(opts.encoders) == ["mine"]
    opts = _as_dataclass({"experiment": "char_lm"}, TrainingOptions)
    assert list(opts.encoders) == ["nn_rnn", "autograd", "bptt", "torch", "auto"]  # defaults


def test_a_bad_last_encoder_fails_before_any_encoder_trains(tmp_path, fake_train):
    encoders = {
        "torch": ["model/encoder=torch_rnn"],
        "bptt": ["model/encoder=elman", "model.encoder.backend=bptt"],
        "typo": ["model/encoder=elman", "+model.encoder.hiden_size=8"],
    }
    with pytest.raises(EncoderConfigError, match=r"encoder 'typo'.*hiden_size"):
        run_training(TrainingOptions(encoders=encoders), tmp_path)
    assert fake_train == []  # nothing trained
    bad_type = {"torch": ["model/encoder=torch_rnn"], "slow": ["trainer.max_epochs=many"]}
    with pytest.raises(EncoderConfigError, match=r"encoder 'slow'.*max_epochs"):
        run_training(TrainingOptions(encoders=bad_type), tmp_path)
    missing = {"torch": ["model/encoder=torch_rnn"], "nope": ["model/encoder=nonexistent"]}
    with pytest.raises(EncoderConfigError, match=r"encoder 'nope'"):
        run_training(TrainingOptions(encoders=missing), tmp_path)
    assert fake_train == []
