"""Building Lightning objects from config groups, and the one route from the data to the model.

The data module is set up first; :func:`data_info` describes it as plain data (sizes, special
ids, vocabulary); :func:`instantiate_model` hands that description to the model's
constructor, which stores it as hyper-parameters, so every checkpoint carries it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from seqmodels.tasks.base import SPEC_ATTR, is_plain

#: Sizes a set-up DataModule may have (``None`` where it has no such attribute).
DATA_SIZES = (
    "vocab_size",
    "num_classes",
    "input_size",
    "output_size",
    "target_vocab_size",
    "pad_id",
)

#: Entries of :func:`data_info` that are no config material and never enter the config: a
#: vocabulary has thousands of tokens, any of which (``${x}``) OmegaConf would read as an
#: interpolation. A model config asks for one by setting the key of the same name to null.
DATA_OBJECTS = ("vocab",)


def data_info(datamodule: L.LightningDataModule) -> dict[str, Any]:
    """What a model takes from the set-up ``datamodule``, as plain data.

    Its sizes, the special ids of the target vocabulary (``bos_id``/``eos_id``, for
    encoder-decoder data) and its ``vocab`` as a plain dict (``Vocabulary.state_dict()``),
    or ``None`` where the data has no such thing.
    """
    info: dict[str, Any] = {key: getattr(datamodule, key, None) for key in DATA_SIZES}
    target_vocab = getattr(datamodule, "target_vocab", None)
    for key in ("bos_id", "eos_id"):
        info[key] = getattr(target_vocab, key, None)
    info = {k: (int(v) if isinstance(v, bool | int) else v) for k, v in info.items()}
    vocab = getattr(datamodule, "vocab", None)
    info["vocab"] = vocab.state_dict() if hasattr(vocab, "state_dict") else vocab
    return info


def config_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of :func:`data_info` that model configs read as ``${data_info.NAME}``."""
    return {key: value for key, value in info.items() if key not in DATA_OBJECTS}


def instantiate_model(cfg: DictConfig, info: Mapping[str, Any]) -> L.LightningModule:
    """The ``model`` config built with the data's description ``info`` (:func:`data_info`).

    Sizes reach the constructor through the config's ``${data_info.NAME}`` interpolations
    (the run config's ``data_info`` holds :func:`config_info`). Each of
    :data:`DATA_OBJECTS` is passed as a keyword where the model config has that key set to
    null; a value the config sets itself wins, and a config without the key never gets it.
    """
    builder = instantiate(cfg, _convert_="all", _partial_=True)
    if not isinstance(builder, functools.partial):
        return builder
    # Passed to the built partial, not merged into the config, so OmegaConf never parses them.
    objects = {
        key: info[key]
        for key in DATA_OBJECTS
        if key in cfg and cfg[key] is None and info.get(key) is not None
    }
    objects.update(_built_arguments(cfg))
    return builder(**objects)


def _built_arguments(cfg: DictConfig) -> dict[str, Any]:
    """The model's ``_target_`` arguments (encoder, cell factories), each built from config and
    carrying that config (resolved, plain data) as its spec: what a checkpoint stores in place
    of the object, so loading it never unpickles code."""
    built: dict[str, Any] = {}
    for key in cfg:
        node = cfg._get_node(key)
        if not (isinstance(node, DictConfig) and "_target_" in node):
            continue
        spec = OmegaConf.to_container(node, resolve=True)
        obj = instantiate(node, _convert_="all")
        if is_plain(spec):
            try:
                setattr(obj, SPEC_ATTR, spec)
            except (AttributeError, TypeError):
                pass
        built[str(key)] = obj
    return built


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
