"""Deterministic splits and worker-safe seeding.

Example:
    >>> train, val, test = split_indices(10, val_fraction=0.2, test_fraction=0.1, seed=0)
    >>> len(train), len(val), len(test)
    (7, 2, 1)
    >>> split_indices(10, 0.2, 0.1, seed=0) == (train, val, test)
    True
"""

from __future__ import annotations

import random

import numpy as np
import torch


def _counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    if n - n_val - n_test < 1:
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} leave no "
            f"training examples out of {n}"
        )
    return n_val, n_test


def split_indices(
    n: int, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[list[int], list[int], list[int]]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into train/validation/test indices.

    The same ``(n, fractions, seed)`` always gives the same split, on any machine.
    """
    n_val, n_test = _counts(n, val_fraction, test_fraction)
    perm = torch.randperm(n, generator=make_generator(seed)).tolist()
    return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]


def chronological_split(
    n: int, val_fraction: float = 0.1, test_fraction: float = 0.1
) -> tuple[range, range, range]:
    """Contiguous train/validation/test ranges in time order (for time series and streams)."""
    n_val, n_test = _counts(n, val_fraction, test_fraction)
    n_train = n - n_val - n_test
    return range(0, n_train), range(n_train, n_train + n_val), range(n_train + n_val, n)


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (for samplers and generation)."""
    return torch.Generator().manual_seed(int(seed))


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` seeding Python's and NumPy's RNGs from the worker's torch seed.

    Torch already gives each worker ``base_seed + worker_id``; this makes ``random`` and
    ``numpy`` follow it, so augmentations in workers are reproducible and not duplicated.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
