"""Run directories that are unique, made atomically: two runs started in the same second, two
sweep jobs with the same number in sweeps started together, never share one.

Hydra names a run directory by the time (``runs/%Y-%m-%d_%H-%M-%S``). The resolvers below
create it with an exclusive ``os.mkdir``; when another process got there first they take the
next free ``<name>_2``, ``<name>_3`` ... Each is resolved once per process and remembered, so
every later read of ``hydra.run.dir`` in this process (Hydra's, Lightning's) gets the same
directory; the processes of one DDP run agree because Lightning hands its children the
resolved directory (``hydra.run.dir=...``) and ``ddp_spawn`` children inherit the config.
"""

from __future__ import annotations

import os
import threading

from omegaconf import OmegaConf

_LOCK = threading.Lock()
_MADE: dict[tuple[str, str], str] = {}


def make_unique_dir(base: str) -> str:
    """Create ``base`` exclusively, else the first free ``base_N`` (N = 2, 3, ...); its path."""
    parent = os.path.dirname(base)
    if parent:
        os.makedirs(parent, exist_ok=True)
    n = 1
    while True:
        candidate = base if n == 1 else f"{base}_{n}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            n += 1
            continue
        return candidate


def run_dir(base: str) -> str:
    """``hydra.run.dir``: one new directory per process and runs folder (``dirname(base)``).

    Keyed by the folder, not by ``base``, so that a timestamp read again a second later
    still names this run's directory.
    """
    key = ("run", os.path.abspath(os.path.dirname(str(base))))
    with _LOCK:
        if key not in _MADE:
            _MADE[key] = make_unique_dir(str(base))
        return _MADE[key]


def job_dir(sweep_dir: str, num: str) -> str:
    """``hydra.sweep.subdir``: job ``num``'s directory in ``sweep_dir``, made exclusively.

    Absolute (Hydra joins it to the sweep directory, which then has no effect), so a job of a
    second sweep started in the same second gets ``<num>_2`` instead of sharing.
    """
    key = ("job", os.path.abspath(os.path.join(str(sweep_dir), str(num))))
    with _LOCK:
        if key not in _MADE:
            _MADE[key] = os.path.abspath(make_unique_dir(key[1]))
        return _MADE[key]


def register_resolvers() -> None:
    """``${seqmodels.run_dir:BASE}`` and ``${seqmodels.job_dir:SWEEP_DIR,NUM}``."""
    for name, fn in (("seqmodels.run_dir", run_dir), ("seqmodels.job_dir", job_dir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
