"""Loading a checkpoint never runs code: every entry point loads with weights_only=True.

A crafted ``.ckpt`` whose pickle would write a marker file is given to seqmodels-eval,
seqmodels-sample, seqmodels-train ckpt_path=..., load_from_checkpoint and the data's own
checkpoint read; the marker is never written and each refuses with a message naming the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY, compose_cfg, run_cli

from seqmodels.cli.evaluate import evaluate
from seqmodels.cli.sample import sample
from seqmodels.cli.train import train
from seqmodels.experiment.runs import load_run
from seqmodels.tasks import LanguageModel
from seqmodels.tasks.base import CheckpointLoadError, read_checkpoint

TRAIN = [
    *TINY["char_lm"],
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.rich_progress_bar=null",
    "report.sample.max_new_tokens=3",
]


class _Payload:
    """Unpickling this writes ``marker``: what an attacker's checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A genuine run, and a copy of it whose checkpoints are malicious."""
    tmp = tmp_path_factory.mktemp("safety")
    genuine = tmp / "genuine"
    train(compose_cfg("train", [*TRAIN, f"paths.output_dir={genuine}"], tmp))
    evil = tmp / "evil"
    shutil.copytree(genuine, evil)
    marker = tmp / "MARKER"
    for ckpt in evil.rglob("*.ckpt"):
        state = torch.load(ckpt, weights_only=True)
        state["hyper_parameters"]["payload"] = _Payload(marker)
        torch.save(state, ckpt)
    return genuine, evil, marker


def test_genuine_checkpoints_are_plain_data(runs):
    genuine, _, _ = runs
    for ckpt in genuine.rglob("*.ckpt"):
        checkpoint = torch.load(ckpt, weights_only=True)  # raises on anything but plain data
        encoder = checkpoint["hyper_parameters"]["encoder"]
        assert encoder["_target_"] == "seqmodels.ElmanRNN" and encoder["hidden_size"] == 16
        assert isinstance(checkpoint["hyper_parameters"]["vocab"]["tokens"], list)
    for name in ("hparams.yaml", "config.yaml"):
        text = (genuine / name).read_text()
        assert "!!python" not in text, name
        assert yaml.safe_load(text)  # human-readable, plain YAML
    model = LanguageModel.load_from_checkpoint(genuine / "checkpoints" / "last.ckpt")
    assert model.generate("The ", max_new_tokens=3, seed=0)


def _assert_refused(err: BaseException, marker: Path, path: Path | None = None) -> None:
    assert not marker.exists(), "loading the checkpoint ran its code"
    assert "refusing to load checkpoint" in str(err)
    if path is not None:
        assert str(path) in str(err)


def test_every_loading_entry_point_refuses_a_malicious_checkpoint(runs, tmp_path):
    _, evil, marker = runs
    last = evil / "checkpoints" / "last.ckpt"

    with pytest.raises(CheckpointLoadError) as err:
        LanguageModel.load_from_checkpoint(last)
    _assert_refused(err.value, marker, last)

    with pytest.raises(CheckpointLoadError) as err:
        load_run(str(last)).datamodule()  # the data's own read of the checkpoint
    _assert_refused(err.value, marker, last)

    with pytest.raises(CheckpointLoadError) as err:
        evaluate(compose_cfg("eval", [f"ckpt_path={last}"], tmp_path))
    _assert_refused(err.value, marker, last)

    with pytest.raises(CheckpointLoadError) as err:
        sample(compose_cfg("sample", [f"ckpt_path={evil}"], tmp_path))
    _assert_refused(err.value, marker)

    cfg = compose_cfg(
        "train", [*TRAIN, f"ckpt_path={last}", f"paths.output_dir={tmp_path / 'r'}"], tmp_path
    )
    with pytest.raises(CheckpointLoadError) as err:
        train(cfg)
    _assert_refused(err.value, marker, last)

    # The commands as a user runs them: a one-line error, exit status 1, nothing executed.
    for module, args in (
        ("seqmodels.cli.evaluate", [f"ckpt_path={last}"]),
        ("seqmodels.cli.sample", [f"ckpt_path={last}"]),
        ("seqmodels.cli.train", [*TRAIN, f"ckpt_path={last}"]),
    ):
        result = run_cli(module, *args, cwd=tmp_path)
        assert result.returncode == 1, (module, result.stderr[-2000:])
        assert f"seqmodels: refusing to load checkpoint {last}" in result.stderr, module
        assert "Traceback" not in result.stderr, module
        assert not marker.exists()


def test_lightning_resume_path_loads_weights_only(runs):
    """Trainer.fit/validate(ckpt_path=...) inside train() are called with weights_only=True."""
    import inspect

    from seqmodels.cli import train as train_module

    source = inspect.getsource(train_module.train)
    assert "weights_only=False" not in source
    assert source.count("weights_only=True") >= 3


def test_empty_checkpoint_names_the_file(tmp_path):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointLoadError, match=f"checkpoint {empty} is empty"):
        read_checkpoint(empty)
    with pytest.raises(CheckpointLoadError, match="is empty"):
        LanguageModel.load_from_checkpoint(empty)


def test_eval_and_sample_without_ckpt_path_say_it_is_required(tmp_path):
    for module in ("seqmodels.cli.evaluate", "seqmodels.cli.sample"):
        result = run_cli(module, cwd=tmp_path)
        assert result.returncode == 1
        assert "ckpt_path is required" in result.stderr, result.stderr[-2000:]
        assert "TypeError" not in result.stderr


def test_a_user_cell_that_cannot_be_imported_is_named(runs, tmp_path):
    genuine, _, _ = runs
    ckpt = tmp_path / "user_cell.ckpt"
    state = torch.load(genuine / "checkpoints" / "last.ckpt", weights_only=True)
    state["hyper_parameters"]["encoder"] = {
        "_target_": "seqmodels.experiment.encoders.generic_encoder",
        "cell": "my_research_pkg.cells.MyCell",
        "input_size": 8,
        "hidden_size": 16,
    }
    torch.save(state, ckpt)
    with pytest.raises(Exception, match="my_research_pkg.cells.MyCell") as err:
        LanguageModel.load_from_checkpoint(ckpt)
    assert "Python path" in str(err.value)
    assert not isinstance(err.value, ModuleNotFoundError)
