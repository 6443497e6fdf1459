"""Optimisers and learning-rate schedules from config.

Two interchangeable spellings, both Hydra-friendly:

* a factory (what ``_partial_: true`` builds, as in lightning-hydra-template):
  ``optimizer=functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)`` and
  ``scheduler=functools.partial(ExponentialDecayLR, decay_rate=0.5, decay_steps=10)``;
* a name plus keyword arguments: ``optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9}``,
  ``scheduler={"name": "exponential", "decay_rate": 0.5, "decay_steps": 10}``.

Gradient clipping is Lightning's:
``Trainer(gradient_clip_val=..., gradient_clip_algorithm="norm")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}

#: What a task accepts as ``optimizer``: ``None`` (Adam, lr 1e-3), a factory or a name + kwargs.
OptimizerSpec = Callable[..., Optimizer] | Mapping[str, Any] | None
#: What a task accepts as ``scheduler``: ``None`` (constant lr), a factory or a name + kwargs.
SchedulerSpec = Callable[..., Any] | Mapping[str, Any] | None


class ExponentialDecayLR(LambdaLR):
    """``lr = base_lr * decay_rate ** (epoch / decay_steps)``, stepped once per epoch (or step).

    With ``staircase=True`` the exponent is ``floor(epoch / decay_steps)``.

    Example::

        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = ExponentialDecayLR(opt, decay_rate=0.5, decay_steps=2)
        >>> for _ in range(2):
        ...     opt.step(); sched.step()
        >>> round(opt.param_groups[0]["lr"], 4)
        0.5
    """

    def __init__(
        self,
        optimizer: Optimizer,
        decay_rate: float,
        decay_steps: float = 1.0,
        staircase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < decay_rate <= 1:
            raise ValueError(f"decay_rate must be in (0, 1], got {decay_rate!r}")
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be positive, got {decay_steps!r}")
        self.decay_rate, self.decay_steps, self.staircase = decay_rate, decay_steps, staircase
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _factor(self, epoch: int) -> float:
        exponent = epoch / self.decay_steps
        return self.decay_rate ** (math.floor(exponent) if self.staircase else exponent)


def _step_lr(optimizer: Optimizer, step_size: int, gamma: float = 0.1, **kw: Any) -> LRScheduler:
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma, **kw)


def _cosine_lr(optimizer: Optimizer, T_max: int, eta_min: float = 0.0, **kw: Any) -> LRScheduler:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=T_max, eta_min=eta_min, **kw)


SCHEDULERS: dict[str, Callable[..., Any]] = {
    "exponential": ExponentialDecayLR,
    "step": _step_lr,
    "cosine": _cosine_lr,
    "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau,
}


def _split_name(spec: Mapping[str, Any], kind: str, table: Mapping[str, Any]) -> tuple[Any, dict]:
    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    if name is None or str(name).lower() not in table:
        raise ValueError(
            f"{kind} needs 'name', one of {', '.join(sorted(table))}; got {name!r} in {dict(spec)}"
        )
    return table[str(name).lower()], kwargs


def build_optimizer(spec: OptimizerSpec, params: Iterable[torch.nn.Parameter]) -> Optimizer:
    """An optimiser from a factory, a ``{"name": ..., **kwargs}`` mapping or ``None`` (Adam)."""
    if spec is None:
        return torch.optim.Adam(params, lr=1e-3)
    if isinstance(spec, Mapping):
        cls, kwargs = _split_name(spec, "optimizer", OPTIMIZERS)
        return cls(params, **kwargs)
    if callable(spec):
        return spec(params)
    raise ValueError(f"optimizer must be a factory, a mapping with 'name', or None; got {spec!r}")


def build_scheduler(spec: SchedulerSpec, optimizer: Optimizer) -> Any | None:
    """Build a learning-rate scheduler (or ``None``) for ``optimizer``."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        factory, kwargs = _split_name(spec, "scheduler", SCHEDULERS)
        return factory(optimizer, **kwargs)
    if callable(spec):
        return spec(optimizer)
    raise ValueError(f"scheduler must be a factory, a mapping with 'name', or None; got {spec!r}")


def configure_optimization(
    params: Iterable[torch.nn.Parameter],
    optimizer: OptimizerSpec,
    scheduler: SchedulerSpec,
    interval: str = "epoch",
    monitor: str = "val/loss",
) -> Any:
    """What ``LightningModule.configure_optimizers`` returns for these specs."""
    if interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {interval!r}")
    opt = build_optimizer(optimizer, params)
    sched = build_scheduler(scheduler, opt)
    if sched is None:
        return opt
    config = {"scheduler": sched, "interval": interval, "frequency": 1}
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        config["monitor"] = monitor
    return {"optimizer": opt, "lr_scheduler": config}
