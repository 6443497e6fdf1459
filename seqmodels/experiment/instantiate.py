"""Building Lightning objects from config groups, and the data sizes a model is built with."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

#: DataModule attributes (after ``setup()``) that model configs read as ``${data_info.NAME}``.
DATA_INFO_KEYS = (
    "vocab_size",
    "num_classes",
    "input_size",
    "output_size",
    "target_vocab_size",
    "pad_id",
)


def data_info(datamodule: L.LightningDataModule) -> dict[str, Any]:
    """Sizes read from a set-up DataModule (``None`` where it has no such attribute).

    The special ids of the target vocabulary (``bos_id``/``eos_id``) come along for
    encoder-decoder data.
    """
    info: dict[str, Any] = {key: getattr(datamodule, key, None) for key in DATA_INFO_KEYS}
    target_vocab = getattr(datamodule, "target_vocab", None)
    for key in ("bos_id", "eos_id"):
        info[key] = getattr(target_vocab, key, None)
    return {k: (int(v) if isinstance(v, bool | int) else v) for k, v in info.items()}


def data_arguments(model_class: Any, datamodule: L.LightningDataModule) -> dict[str, Any]:
    """What a model takes from the set-up data besides sizes: its ``vocab``.

    A model class whose constructor has a ``vocab`` argument (``LanguageModel``) gets the
    DataModule's vocabulary as a plain dict (``Vocabulary.state_dict()``), so the model in
    this process holds it from the start (it becomes a hyperparameter, hence part of every
    checkpoint); under ``ddp_spawn`` the model's own ``setup`` runs in the workers only.
    """
    try:
        parameters = inspect.signature(model_class).parameters
    except (TypeError, ValueError):
        return {}
    vocab = getattr(datamodule, "vocab", None)
    if "vocab" not in parameters or vocab is None:
        return {}
    return {"vocab": vocab.state_dict() if hasattr(vocab, "state_dict") else dict(vocab)}


def instantiate_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    """The ``model`` config built with :func:`data_arguments` from the set-up ``datamodule``
    (a ``vocab`` the config sets itself wins)."""
    builder = instantiate(cfg, _convert_="all", _partial_=True)
    if not isinstance(builder, functools.partial):
        return builder
    extra = {
        key: value
        for key, value in data_arguments(builder.func, datamodule).items()
        if builder.keywords.get(key) is None
    }
    return builder(**extra)


def _instantiate_group(cfg: DictConfig | None, kind: str, expected: type) -> list[Any]:
    """Every ``_target_`` child of a group node (a child set to null is switched off)."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"{kind} config must be a mapping of name -> config, got {type(cfg)}")
    objects = []
    for name, node in cfg.items():
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ValueError(f"{kind}.{name} needs a _target_ (the class to build), got {node}")
        obj = instantiate(node)
        if not isinstance(obj, expected):
            raise TypeError(
                f"{kind}.{name} built a {type(obj).__name__}, expected a {expected.__name__}"
            )
        objects.append(obj)
    return objects


def instantiate_callbacks(cfg: DictConfig | None) -> list[L.Callback]:
    """The Lightning callbacks of the ``callbacks`` group."""
    return _instantiate_group(cfg, "callbacks", L.Callback)


def instantiate_loggers(cfg: DictConfig | None) -> list[Logger]:
    """The Lightning loggers of the ``logger`` group."""
    return _instantiate_group(cfg, "logger", Logger)
