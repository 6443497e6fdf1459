"""Shared helpers for the task tests: tiny trainers, batch lists and padding."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from seqmodels import RecurrentCell


def trainer(**kwargs) -> L.Trainer:
    """A quiet single-device trainer (``accelerator="auto"``: the GPU when there is one)."""
    options = dict(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return L.Trainer(**options)


def loader(batches: list[dict]) -> DataLoader:
    """A loader that yields the given ready-made batch dicts in order."""
    return DataLoader(batches, batch_size=None, shuffle=False)


def validate(task, batches: list[dict]) -> dict[str, float]:
    (metrics,) = trainer().validate(task, loader(batches), verbose=False)
    return metrics


def pad_right(x: torch.Tensor, extra: int, value) -> torch.Tensor:
    """Append ``extra`` padded steps along dim 1 of a batch-first tensor."""
    shape = list(x.shape)
    shape[1] = extra
    return torch.cat([x, x.new_full(shape, value)], dim=1)


class LeakyCell(RecurrentCell):
    """A user-defined cell: h = 0.5 h + 0.5 tanh(W [x; h])."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.linear = torch.nn.Linear(input_size + hidden_size, hidden_size)

    def forward(self, x_t, h):
        h = 0.5 * h + 0.5 * torch.tanh(self.linear(torch.cat([x_t, h], -1)))
        return h, h


def assert_same_metrics(a: dict[str, float], b: dict[str, float], rel: float = 1e-5) -> None:
    assert a.keys() == b.keys(), (a.keys(), b.keys())
    for key in a:
        va, vb = float(a[key]), float(b[key])
        assert abs(va - vb) <= rel * max(1.0, abs(va)), f"{key}: {va} != {vb}"
