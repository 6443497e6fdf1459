"""A wheel of seqmodels, installed non-editable, runs its commands from any directory.

The wheel is built from a copy of the source tree (so the build writes nothing into it)
without build isolation or an index, and installed into a fresh virtual environment that
sees the already installed dependencies through a ``.pth`` file: no network, and nothing of
the source tree on ``sys.path``. The configs then come from the installed package only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR") and not k.startswith("SEQMODELS_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}, expected 0\n"
        f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-4000:]}"
    )
    return result


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin/`` of a fresh venv with the wheel installed (not editable)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "seqmodels", src / "seqmodels", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    dist = root / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(dist), str(src)],
        cwd=root,
    )  # fmt: skip
    [wheel] = dist.glob("seqmodels-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    # The dependencies (and pip) of this environment, appended after the venv's own
    # site-packages; a .pth in that appended directory (the editable seqmodels) is not run.
    parents = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (_site_packages(python) / "_parent_env.pth").write_text("\n".join(sorted(parents)) + "\n")
    _run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
         "-q", str(wheel)],
        cwd=root,
    )  # fmt: skip
    return venv / "bin"


def test_wheel_ships_configs_and_data(installed, tmp_path):
    out = _run(
        [
            installed / "python",
            "-c",
            "import seqmodels, seqmodels.experiment.entry as e, pathlib;"
            "print(seqmodels.__file__);"
            "print(len(list(pathlib.Path(e.CONFIG_DIR).rglob('*.yaml'))));"
            "from seqmodels.data.corpora.seattle_temps import seattle_temps;"
            "print(tuple(seattle_temps().shape))",
        ],
        cwd=tmp_path,
    ).stdout.splitlines()
    location, n_yaml, shape = out[0], int(out[1]), out[2]
    assert Path(location).is_relative_to(installed.parent), f"imported from {location}"
    expected = len(list((REPO / "seqmodels" / "conf").rglob("*.yaml")))
    assert n_yaml == expected, f"the wheel holds {n_yaml} config files, expected {expected}"
    assert shape == "(8759, 1)"


def test_installed_train_runs_from_an_empty_directory(installed, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    _run(
        [installed / "seqmodels-train", "experiment=adding", "debug=fast_dev_run"],
        cwd=work,
        timeout=240,
    )
    [run_dir] = list((work / "logs" / "adding" / "runs").iterdir())
    written = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert {".hydra/config.yaml", ".hydra/overrides.yaml"} <= written, sorted(written)
    assert "debug=fast_dev_run" in (run_dir / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.parametrize(
    ("command", "key"), [("seqmodels-eval", "ckpt_path"), ("seqmodels-sample", "prompts")]
)
def test_installed_eval_and_sample_compose_their_configs(installed, tmp_path, command, key):
    out = _run([installed / command, "--cfg", "job"], cwd=tmp_path, timeout=120).stdout
    assert f"{key}:" in out, out[-2000:]
