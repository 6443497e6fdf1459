"""Structured-config schemas: dataclasses registered in Hydra's ConfigStore.

The primary configs (``conf/train.yaml``, ``conf/eval.yaml``, ``conf/sample.yaml``) and the
``trainer`` group list a schema first in their defaults, so Hydra merges every YAML value
and command-line override into a typed node: a misspelt key or a wrong type fails while the
config is composed, before anything is built (:mod:`seqmodels.experiment.validate` adds the
valid keys to the message). ``data``/``model``/``callbacks``/``logger`` hold ``_target_``
nodes whose keys are checked against the target's signature instead, because their valid
keys depend on the class they name.
"""

from __future__ import annotations

import inspect
import pathlib
import types
import typing
from dataclasses import dataclass, field, make_dataclass
from typing import Any

import lightning as L
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# Trainer arguments that are objects, not values: passed by train() itself, never configured.
_TRAINER_OBJECT_ARGS = {"callbacks", "logger", "plugins"}


_PRIMITIVES = (bool, int, float, str)


def _config_type(annotation: Any) -> Any:
    """The OmegaConf type of a Trainer argument annotated ``annotation``, or ``Any``.

    Values a config can hold are typed: ``int``, ``float``, ``bool``, ``str``, a
    ``Literal`` (typed by its values' types), ``pathlib.Path`` (as ``str``), ``Optional``
    and unions of those (``Union[int, float]``). An argument that may also be an object
    (an ``Accelerator``, a ``timedelta``, a list of devices) stays ``Any``: Hydra may build
    it from a ``_target_`` node, and Lightning checks it.
    """
    if annotation is inspect.Parameter.empty or annotation is Any:
        return Any
    if annotation in _PRIMITIVES:
        return annotation
    if annotation is pathlib.Path:
        return str
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        members = {type(a) for a in args}
        if not members <= set(_PRIMITIVES):
            return Any
        return _union(members, optional=False)
    if origin in (typing.Union, types.UnionType):
        optional = type(None) in args
        members: set[type] = set()
        for arg in args:
            if arg is type(None):
                continue
            sub = _config_type(arg)
            if sub is Any:
                return Any
            members.update(typing.get_args(sub) or (sub,))
        members.discard(type(None))
        return _union(members, optional=optional) if members else Any
    return Any


def _union(members: set[type], *, optional: bool) -> Any:
    ordered = tuple(t for t in _PRIMITIVES if t in members)
    tp: Any = ordered[0] if len(ordered) == 1 else typing.Union[ordered]  # noqa: UP007
    return typing.Optional[tp] if optional else tp  # noqa: UP045


def _trainer_schema() -> type:
    """A dataclass with one field per ``lightning.Trainer`` argument (defaults: Lightning's).

    Generated from the signature so it always matches the installed Lightning: a key that
    is not a Trainer argument is rejected, whichever version is installed. Each field is
    typed from Lightning's annotation (:func:`_config_type`), so ``trainer.max_epochs=abc``
    fails while the config is composed, naming the key, the expected type and the value,
    instead of deep inside Lightning after the data and the model were built.
    """
    fields: list[tuple[str, Any, Any]] = [("_target_", str, field(default="lightning.Trainer"))]
    signature = inspect.signature(L.Trainer.__init__, eval_str=True)
    for name, param in signature.parameters.items():
        if name == "self" or name in _TRAINER_OBJECT_ARGS or param.kind is param.VAR_KEYWORD:
            continue
        default = param.default if param.default is not inspect.Parameter.empty else None
        if not isinstance(default, (str, int, float, bool, type(None))):
            default = None  # e.g. a timedelta or an object default: configured as a value
        tp = _config_type(param.annotation)
        if default is None and tp is not Any and type(None) not in typing.get_args(tp):
            tp = typing.Optional[tp]  # noqa: UP045 (null stands for Lightning's default)
        fields.append((name, tp, field(default=default)))
    return make_dataclass("TrainerConfig", fields)


TrainerConfig = _trainer_schema()


@dataclass
class PathsConfig:
    """Where things are read from and written to (``output_dir``: this run's directory)."""

    root_dir: str = "."
    log_dir: str = "logs"
    output_dir: str = "logs/run"
    runs_dir: str = "logs"  # searched by ``ckpt_path=last`` when this run has no checkpoint


@dataclass
class SampleOptions:
    """What a generating task shows at the end of training (and stores in summary.json)."""

    enabled: bool = True
    prompts: list[str] = field(default_factory=lambda: ["The "])
    max_new_tokens: int = 200
    strategy: str = "sample"
    temperature: float = 0.8
    top_k: int | None = None
    num_examples: int = 5  # seq2seq: validation sources decoded and shown
    seed: int = 0


@dataclass
class ReportConfig:
    """Metrics printed at the end of a run: ``[label, metric, baseline metric or null]``."""

    metrics: list[Any] = field(default_factory=list)
    sample: SampleOptions = field(default_factory=SampleOptions)


@dataclass
class TrainConfig:
    """The root of ``conf/train.yaml``."""

    name: str = "experiment"
    seed: int = 0
    train: bool = True
    test: bool = True
    ckpt_path: str | None = None
    optimized_metric: str | None = "val/loss"
    tags: list[str] = field(default_factory=list)
    data: Any = MISSING
    model: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)  # type: ignore[valid-type]
    callbacks: Any = field(default_factory=dict)
    logger: Any = field(default_factory=dict)
    paths: PathsConfig = field(default_factory=PathsConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    data_info: Any = field(default_factory=dict)  # sizes read from the data at run time


@dataclass
class EvalConfig:
    """The root of ``conf/eval.yaml``: evaluate a checkpoint on one split."""

    ckpt_path: str | None = None
    split: str = "test"
    seed: int = 0
    data: Any = None  # None: rebuild the DataModule from the run's saved config
    trainer: TrainerConfig = field(default_factory=TrainerConfig)  # type: ignore[valid-type]
    paths: PathsConfig = field(default_factory=PathsConfig)


@dataclass
class SampleConfig:
    """The root of ``conf/sample.yaml``: generate from a language-model or seq2seq checkpoint."""

    ckpt_path: str | None = None
    prompts: list[str] = field(default_factory=lambda: ["The "])
    max_new_tokens: int = 200
    strategy: str = "sample"
    temperature: float = 0.8
    top_k: int | None = None
    beam_width: int = 1
    num_samples: int = 1
    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)


_REGISTERED = False


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (idempotent; called by every entry point)."""
    global _REGISTERED
    if _REGISTERED:
        return
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="sample_schema", node=SampleConfig)
    cs.store(group="trainer", name="trainer_schema", node=TrainerConfig)
    _REGISTERED = True
