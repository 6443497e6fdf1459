"""Deterministic splits, epoch-seeded shuffling and worker-safe seeding.

Example:
    >>> train, val, test = split_indices(10, val_fraction=0.2, test_fraction=0.1, seed=0)
    >>> len(train), len(val), len(test)
    (7, 2, 1)
    >>> split_indices(10, 0.2, 0.1, seed=0) == (train, val, test)
    True
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class EmptySplitError(ValueError):
    """A validation or test split that would hold no examples (too little data)."""


def min_examples(val_fraction: float, test_fraction: float) -> int:
    """The fewest examples for which every split with a fraction > 0 gets one, and train one.

    Example:
        >>> min_examples(0.1, 0.1), min_examples(0.2, 0.0), min_examples(0.0, 0.0)
        (6, 3, 1)
    """
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} add up to 1 or "
            "more; expected less, so that some examples are left for training"
        )
    n = 1
    while True:
        n_val, n_test = round(n * val_fraction), round(n * test_fraction)
        if (
            (val_fraction <= 0 or n_val > 0)
            and (test_fraction <= 0 or n_test > 0)
            and n - n_val - n_test >= 1
        ):
            return n
        n += 1


def _counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    min_examples(val_fraction, test_fraction)  # the fractions leave room for training
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    for name, split, f, count in (
        ("val_fraction", "validation", val_fraction, n_val),
        ("test_fraction", "test", test_fraction, n_test),
    ):
        if f > 0 and count == 0:
            raise EmptySplitError(
                f"the {split} split is empty: {name}={f} of {n} example(s) rounds to 0; "
                f"expected at least {min_examples(val_fraction, test_fraction)} examples "
                f"(more data, a larger {name}, or {name}=0 to have no {split} split)"
            )
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


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffling seed of ``epoch`` of a loader seeded with ``seed`` (distinct per pair)."""
    return int(seed) * 1_000_003 + int(epoch)


class EpochShuffleSampler(Sampler[int]):
    """A random permutation of ``range(size)`` that depends only on ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` before each training epoch (as it does for
    ``DistributedSampler``), so epoch ``e`` has the same order whether the run got there
    directly or was resumed from a checkpoint, and every epoch has its own order. (A
    ``RandomSampler`` drawing from one generator cannot promise that: its order depends on
    how many epochs that generator has already served.)

    Example:
        >>> s = EpochShuffleSampler(5, seed=0)
        >>> first = list(s)
        >>> s.set_epoch(1)
        >>> second = list(s)
        >>> sorted(second) == [0, 1, 2, 3, 4] and first != second
        True
        >>> s.set_epoch(0)
        >>> list(s) == first
        True
    """

    def __init__(self, size: int, seed: int = 0, epoch: int = 0) -> None:
        self.size, self.seed, self.epoch = int(size), int(seed), int(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = make_generator(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.size, generator=generator).tolist())


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` seeding Python's and NumPy's RNGs from the worker's torch seed.

    Torch already gives each worker ``base_seed + worker_id``; this makes ``random`` and
    ``numpy`` follow it, so augmentations in workers are reproducible and not duplicated.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
