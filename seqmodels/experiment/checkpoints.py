"""Checkpoints: where ``ckpt_path=last`` points, saving that never leaves a broken file, and
the state a resumed run needs to continue exactly where the interrupted one stopped."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

CKPT_SUFFIX = ".ckpt"


def find_last_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The newest ``last*.ckpt`` under ``directory`` (any depth), else its newest ``*.ckpt``."""
    root = Path(directory)
    if not root.is_dir():
        return None
    for pattern in (f"last*{CKPT_SUFFIX}", f"*{CKPT_SUFFIX}"):
        found = [p for p in root.rglob(pattern) if p.is_file()]
        if found:
            return max(found, key=lambda p: (p.stat().st_mtime, str(p)))
    return None


def _run_dir_of(ckpt: Path) -> Path | None:
    """The run directory (the one with ``config.yaml``) of a checkpoint, up to 3 levels up."""
    for candidate in list(ckpt.parents)[:3]:
        if (candidate / "config.yaml").is_file():
            return candidate
    return None


def _experiment_of(run_dir: Path) -> str | None:
    try:
        for line in (run_dir / "config.yaml").read_text().splitlines():
            if line.startswith("name:"):
                return line.split(":", 1)[1].strip().strip("'\"") or None
    except OSError:
        return None
    return None


def find_experiment_checkpoint(runs_dir: str | os.PathLike, name: str | None) -> Path | None:
    """The newest ``last*.ckpt`` (else ``*.ckpt``) of the runs of experiment ``name`` only.

    Searched: the run directories under ``runs_dir`` (``runs/<time>``, ``multiruns/<time>/<n>``)
    whose ``config.yaml`` names this experiment; a checkpoint in any other directory (an
    evaluation's, another experiment's, a stray file) is never taken.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return None
    for pattern in (f"last*{CKPT_SUFFIX}", f"*{CKPT_SUFFIX}"):
        found = []
        for p in root.rglob(pattern):
            run_dir = _run_dir_of(p) if p.is_file() else None
            if run_dir is None or not run_dir.is_relative_to(root):
                continue
            if name is not None and _experiment_of(run_dir) != str(name):
                continue
            found.append(p)
        if found:
            return max(found, key=lambda p: (p.stat().st_mtime, str(p)))
    return None


def resolve_ckpt_path(
    value: str | None,
    output_dir: str | os.PathLike,
    runs_dir: str | os.PathLike | None = None,
    name: str | None = None,
) -> str | None:
    """What ``ckpt_path=`` means: a file; a run directory (its latest checkpoint); ``last``.

    ``last`` takes the latest checkpoint of this run's directory and, when it has none, the
    most recently written ``last.ckpt`` among the earlier runs of this experiment (``name``)
    under ``runs_dir`` (the experiment's ``runs/`` and ``multiruns/``), see
    :func:`find_experiment_checkpoint`.
    """
    if value is None or str(value).strip() in ("", "null", "None"):
        return None
    value = str(value)
    if value == "last":
        found = find_last_checkpoint(output_dir)
        if found is None and runs_dir:
            found = find_experiment_checkpoint(runs_dir, name)
        if found is not None:
            return str(found)
        where = str(output_dir)
        if runs_dir:
            where += f" or the runs of experiment {name!r} in {runs_dir}"
        raise FileNotFoundError(
            f"ckpt_path=last: no checkpoint (*.ckpt) found in {where}; train first, or pass "
            "ckpt_path=<file or run directory>"
        )
    path = Path(value).expanduser()
    if path.is_dir():
        found = find_last_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"ckpt_path={value}: the directory holds no *.ckpt file")
        return str(found)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={value}: no such checkpoint file; expected a .ckpt file, a run "
            "directory or 'last'"
        )
    return str(path)


def fresh_directory(dirpath: str | os.PathLike) -> Path:
    """``dirpath`` if it holds no checkpoint, else the first free ``dirpath/run-N``.

    A run never writes where another run's checkpoints are, so a run that fails (or is
    resumed in the same run directory) can neither overwrite nor rotate them away.
    """
    base = Path(dirpath)
    candidate, n = base, 1
    while candidate.is_dir() and any(candidate.glob(f"*{CKPT_SUFFIX}")):
        n += 1
        candidate = base / f"run-{n}"
    return candidate


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` that writes each local file whole or not at all.

    The checkpoint goes to ``<name>.tmp`` in the target's own directory, is flushed to disk
    and renamed over ``<name>`` (``os.replace``, atomic on one file system). Lightning's
    default stages the file in the system temp directory; when that is another file system,
    its final move is a copy that a killed run can leave half-written over the previous
    ``last.ckpt``. Remote paths (``s3://`` ...) keep Lightning's own write.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        fs, local_path = url_to_fs(str(path))
        if storage_options is not None or not isinstance(fs, LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the previous checkpoint, if any, is untouched
            raise


class SafeModelCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that never destroys an earlier run's checkpoints.

    * Each file is written whole or not at all: at setup, the strategy's default
      ``TorchCheckpointIO`` is replaced by :class:`AtomicCheckpointIO` (through the public
      ``strategy.checkpoint_io`` setter), so a run killed while saving leaves the previous
      ``last.ckpt`` intact. A custom checkpoint IO (async, XLA) set by the user is kept.
    * At ``fit`` start it moves to a ``run-N`` subdirectory when ``dirpath`` already holds
      checkpoints of another run, so top-k rotation can never delete them.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.dirpath is not None and not trainer.fast_dev_run:
            fresh = fresh_directory(self.dirpath)
            if str(fresh) != str(self.dirpath):
                self.dirpath = str(fresh)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        super().setup(trainer, pl_module, stage)


def _rng_state() -> dict[str, Any]:
    """The global random states as tensors and lists: ``torch.load(weights_only=True)``-safe."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [int(version), list(internal), gauss],
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeState(L.Callback):
    """Keeps what Lightning's checkpoint leaves out, so a resumed run repeats the original:
    the global random states (dropout, sampling in tasks), saved in every checkpoint and
    restored when training starts.

    The shuffling order needs nothing here: the DataModules' training samplers
    (:class:`seqmodels.data.EpochShuffleSampler`) make epoch ``e``'s order a function of
    ``(seed, e)``. Exact for checkpoints taken at the end of an epoch
    (``ModelCheckpoint``'s default); a mid-epoch checkpoint resumes with Lightning's usual
    caveats.
    """

    def __init__(self) -> None:
        self._pending_rng: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_rng = state_dict.get("rng")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending_rng is not None:
            _set_rng_state(self._pending_rng)
            self._pending_rng = None
