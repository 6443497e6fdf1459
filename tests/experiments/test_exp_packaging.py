"""Configs and data ship in the package; a user's own presets compose on top of them."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest
from conftest import compose_cfg, module_available, run_cli

from seqmodels.data.corpora.seattle_temps import seattle_temps
from seqmodels.experiment.entry import CONFIG_DIR, CONFIG_MODULE, CONFIG_PATH

# A user's preset: seqmodels' `adding` experiment, shorter and renamed.
USER_PRESET = """\
# @package _global_
defaults:
  - adding
  - _self_

name: my_adding
data:
  length: 12
model:
  encoder:
    hidden_size: 24
"""


def _user_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "my_repo" / "conf"
    (conf / "experiment").mkdir(parents=True)
    (conf / "experiment" / "my_adding.yaml").write_text(USER_PRESET)
    return conf


def test_configs_are_read_from_the_package():
    assert CONFIG_PATH == "pkg://seqmodels.conf"
    spec = importlib.util.find_spec(CONFIG_MODULE)
    assert spec is not None and spec.origin is not None
    # The on-disk directory is the imported package's, wherever it is installed.
    assert Path(CONFIG_DIR) == Path(spec.origin).parent
    assert (Path(CONFIG_DIR) / "train.yaml").is_file()


def test_user_preset_composes_on_top_of_the_package_groups(tmp_path):
    conf = _user_conf(tmp_path)
    cfg = compose_cfg(
        "train", [f"hydra.searchpath=[file://{conf}]", "experiment=my_adding"], tmp_path
    )
    assert cfg.name == "my_adding"
    assert cfg.data.length == 12 and cfg.model.encoder.hidden_size == 24
    # Everything else comes from seqmodels' own `adding` experiment and groups.
    assert cfg.model.encoder.nonlinearity == "relu"
    assert cfg.trainer.gradient_clip_val == 1.0
    assert cfg.data._target_.startswith("seqmodels.data.")


def test_config_dir_adds_user_presets_on_the_command_line(tmp_path):
    conf = _user_conf(tmp_path)
    result = run_cli(
        "seqmodels.cli.train",
        "--config-dir",
        str(conf),
        "experiment=my_adding",
        "--cfg",
        "job",
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "name: my_adding" in result.stdout
    assert "hidden_size: 24" in result.stdout and "length: 12" in result.stdout


def test_unknown_user_preset_names_the_search_path(tmp_path):
    result = run_cli("seqmodels.cli.train", "experiment=not_a_preset", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 1
    assert "not_a_preset" in result.stderr and "adding" in result.stderr


def test_seattle_temps_read_from_the_shipped_csv_are_the_former_embedded_values():
    series = seattle_temps()
    assert series.shape == (8759, 1) and series.dtype.is_floating_point
    # Values of the former seqmodels/data/corpora/seattle_temps_data.py module.
    assert series[0, 0].item() == pytest.approx(39.4)
    assert series[4000, 0].item() == pytest.approx(66.7)
    assert series[-1, 0].item() == pytest.approx(39.6)
    digest = hashlib.sha256(series.numpy().tobytes()).hexdigest()
    assert digest == "ced56864a75c3c434563a3c9b694a47d077704ac7699d571ce146f53852776fd"


def test_module_available_survives_an_absent_parent_package(monkeypatch):
    # find_spec imports the parent first: with it absent it raises instead of returning None,
    # which is what broke collection without the `sweep` extra (no hydra_plugins at all).
    absent = "seqmodels_absent_parent_for_test"
    monkeypatch.delitem(sys.modules, absent, raising=False)
    with pytest.raises(ModuleNotFoundError):
        importlib.util.find_spec(f"{absent}.child")
    assert module_available(f"{absent}.child") is False
    assert module_available(absent) is False
    assert module_available("hydra.core.global_hydra") is True
