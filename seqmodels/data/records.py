"""Turning records read from files into split, encoded examples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from seqmodels.data.collate import fit_length
from seqmodels.data.splits import split_indices

R = TypeVar("R")


def split_records(
    train: Sequence[R],
    val: Sequence[R] | None,
    test: Sequence[R] | None,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, list[R]]:
    """Train/val/test records: given files are used as they are, the rest split off ``train``.

    Example:
        >>> parts = split_records(list(range(10)), None, [99], val_fraction=0.2,
        ...                       test_fraction=0.5, seed=0)
        >>> len(parts["train"]), len(parts["val"]), parts["test"]
        (8, 2, [99])
    """
    vf = val_fraction if val is None else 0.0
    tf = test_fraction if test is None else 0.0
    tr, va, te = split_indices(len(train), vf, tf, seed)
    return {
        "train": [train[i] for i in tr],
        "val": list(val) if val is not None else [train[i] for i in va],
        "test": list(test) if test is not None else [train[i] for i in te],
    }


def encode_examples(
    records: Sequence[Any],
    make: Callable[[Any], dict[str, Any]],
    *,
    key: str,
    max_length: int | None,
    truncate: bool,
    per_step_targets: bool = False,
) -> list[dict[str, Any]]:
    """Apply ``make`` to each record and enforce ``max_length`` on ``example[key]``.

    Each example gets ``"index"`` (its position) and ``"origin"`` (``record.origin``),
    so a too-long sequence is reported with its file and line at ``setup()`` time;
    ``per_step_targets`` cuts ``example["targets"]`` with the inputs.
    """
    out = []
    for i, record in enumerate(records):
        ex = make(record)
        origin = getattr(record, "origin", None)
        ex[key] = fit_length(ex[key], max_length, truncate, index=i, origin=origin)
        if per_step_targets:
            ex["targets"] = ex["targets"][: ex[key].shape[0]]
        ex["index"], ex["origin"] = i, origin
        out.append(ex)
    return out


def long_tensor(ids: Sequence[int]) -> torch.Tensor:
    """``torch.tensor(ids, dtype=torch.long)``."""
    return torch.tensor(ids, dtype=torch.long)
