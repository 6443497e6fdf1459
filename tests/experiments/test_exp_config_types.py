"""Trainer keys are typed: a wrong type fails while composing, before any work."""

import pytest
from conftest import compose_cfg, run_cli
from hydra.errors import ConfigCompositionException

from seqmodels.experiment.schema import TrainerConfig, _config_type
from seqmodels.experiment.validate import explain_config_error


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.max_epochs=abc", "Integer"),
        ("trainer.max_steps=1.5", "Integer"),
        ("trainer.gradient_clip_val=high", "Union"),
        ("trainer.deterministic=[1]", ""),
        ("trainer.detect_anomaly=maybe", "bool"),
        ("trainer.limit_train_batches=all", "Union"),
    ],
)
def test_wrong_trainer_type_fails_while_composing(tmp_path, override, expected):
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg("train", ["experiment=adding", override], tmp_path)
    message = explain_config_error(info.value)
    key, value = override.split("=")
    assert key in message and value in message, message
    assert expected in message, message


def test_right_trainer_types_compose(tmp_path):
    cfg = compose_cfg(
        "train",
        [
            "trainer.max_epochs=3",
            "trainer.gradient_clip_val=0.5",
            "trainer.limit_train_batches=0.25",
            "trainer.limit_val_batches=2",
            "trainer.precision=bf16-mixed",
            "trainer.deterministic=warn",
            "trainer.fast_dev_run=true",
            "trainer.devices=[0]",
            "trainer.max_time=00:00:10:00",
            "trainer.max_epochs=null",
        ],
        tmp_path,
    )
    assert cfg.trainer.gradient_clip_val == 0.5 and cfg.trainer.limit_val_batches == 2
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.fast_dev_run is True
    assert cfg.trainer.max_epochs is None
    for group in ("cpu", "gpu", "ddp", "ddp_cpu"):
        compose_cfg("train", [f"trainer={group}"], tmp_path)
    for debug in ("default", "fast_dev_run", "limit", "overfit", "profiler"):
        compose_cfg("train", [f"debug={debug}"], tmp_path)


def test_schema_types_come_from_lightnings_annotations():
    import typing

    fields = {f.name: f.type for f in __import__("dataclasses").fields(TrainerConfig)}
    assert fields["max_epochs"] == typing.Optional[int]  # noqa: UP045
    assert fields["num_nodes"] is int and fields["detect_anomaly"] is bool
    assert fields["accelerator"] is typing.Any  # may be an Accelerator object
    assert _config_type(typing.Literal["a", "b"]) is str


def test_cli_with_a_wrong_trainer_type_stops_before_building_anything(tmp_path):
    result = run_cli(
        "seqmodels.cli.train", "experiment=adding", "trainer.max_epochs=abc", cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "trainer.max_epochs" in output and "abc" in output and "Integer" in output, output
    assert "Instantiating data" not in output and "AssertionError" not in output, output
