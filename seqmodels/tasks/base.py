"""What every task shares: optimisation from config, per-stage metrics, gradient-norm logging
and checkpoints that rebuild the whole model (encoder included) by themselves.

Checkpoints hold plain data only: a module or factory argument (the encoder, a decoder cell
factory) is stored as its *spec*, ``{"_target_": "import.path", **constructor kwargs}`` (plus
``"_partial_": True`` for a factory), and rebuilt from it by :meth:`SequenceTask.
load_from_checkpoint`. Every load is ``torch.load(..., weights_only=True)``: a checkpoint can
never run code.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from hydra._internal.utils import _locate  # hydra.utils.get_object, less its error log
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.utilities import grad_norm
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import Metric, MetricCollection

from seqmodels.tasks.heads import StageMetrics
from seqmodels.tasks.optim import OptimizerSpec, SchedulerSpec, configure_optimization

STAGES = ("train", "val", "test")

#: The attribute under which a module or factory built from config carries its spec.
SPEC_ATTR = "_seqmodels_spec"
_PLAIN = (bool, int, float, str, type(None))


class CheckpointLoadError(RuntimeError):
    """A checkpoint that cannot be loaded safely or at all; the message names the file."""


def is_plain(value: Any) -> bool:
    """Whether ``value`` is plain data (numbers, strings, None, lists/dicts of them)."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple):
        return all(is_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    """Tuples as lists (YAML-safe), mappings as dicts."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def import_path(obj: Any) -> str:
    """``module.QualName`` of a class or function."""
    return f"{obj.__module__}.{obj.__qualname__}"


def locate(path: str) -> Any:
    """The object at import path ``path`` (``pkg.mod.Name``), found as Hydra finds a ``_target_``.

    Raises ``ImportError`` that names ``path`` and says to put the defining module on the
    Python path.
    """
    try:
        return _locate(str(path))
    except Exception as err:  # noqa: BLE001 - re-raised with the path and the fix
        cause = err.__cause__ or err  # Hydra's ImportError wraps the import's own error
        reason = " ".join(str(cause).split())
        raise ImportError(
            f"cannot import {path!r} ({type(cause).__name__}: {reason}); put the module that "
            f"defines it on the Python path (PYTHONPATH, or pip install its package)"
        ) from err


def _constructor_kwargs(obj: nn.Module) -> dict[str, Any] | None:
    """The constructor arguments of ``obj`` read back from its attributes, or None."""
    try:
        params = dict(inspect.signature(type(obj).__init__).parameters)
    except (TypeError, ValueError):
        return None
    if isinstance(obj, nn.RNNBase) and any(p.kind == p.VAR_POSITIONAL for p in params.values()):
        # torch.nn.RNN/LSTM/GRU take *args, **kwargs: RNNBase's arguments, ``mode`` implied
        params = dict(inspect.signature(nn.RNNBase.__init__).parameters)
        params.pop("mode", None)
        if isinstance(obj, nn.RNN):
            params["nonlinearity"] = inspect.Parameter(
                "nonlinearity", inspect.Parameter.KEYWORD_ONLY, default="tanh"
            )
    kwargs: dict[str, Any] = {}
    for name, param in list(params.items())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = _attribute(obj, name)
        if value is inspect.Parameter.empty or name in ("device", "dtype"):
            if param.default is inspect.Parameter.empty:
                return None
            continue
        if isinstance(value, nn.Module | list | tuple) and not is_plain(value):
            parts = list(value) if isinstance(value, nn.ModuleList | list | tuple) else None
            specs = [describe(v) for v in parts] if parts is not None else [describe(value)]
            if any(s is None for s in specs):
                return None
            kwargs[name] = specs if parts is not None else specs[0]
            continue
        if not is_plain(value):
            return None
        default = param.default
        if default is not inspect.Parameter.empty and (
            value == default or (default is None and not value)
        ):
            continue  # the default rebuilds it (e.g. proj_size 0 for None)
        kwargs[name] = _plain(value)
    return kwargs


def _attribute(obj: nn.Module, name: str) -> Any:
    """The attribute that holds constructor argument ``name``: ``name``, ``_name`` or
    ``name_layer`` (a module's ``forward`` argument cannot live under its own name)."""
    for attr in (name, f"_{name}", f"{name}_layer"):
        value = getattr(obj, attr, inspect.Parameter.empty)
        if value is not inspect.Parameter.empty and not inspect.ismethod(value):
            return value
    return inspect.Parameter.empty


def _same_parameters(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


def describe(obj: Any) -> dict[str, Any] | None:
    """The spec that rebuilds ``obj`` (a module or a factory), as plain data, or None.

    In order: the spec attached by whoever built it (``seqmodels.experiment`` attaches the
    config it instantiated); a ``functools.partial`` of a class or function with plain
    keyword arguments; a module whose constructor arguments can be read back from its
    attributes and rebuild a module with the same parameter names and shapes.
    """
    spec = getattr(obj, SPEC_ATTR, None)
    if isinstance(spec, Mapping) and is_plain(spec):
        return _plain(spec)
    if isinstance(obj, functools.partial):
        if obj.args or not is_plain(obj.keywords):
            return None
        return {"_target_": import_path(obj.func), "_partial_": True, **_plain(obj.keywords)}
    if isinstance(obj, nn.Module):
        kwargs = _constructor_kwargs(obj)
        if kwargs is None:
            return None
        spec = {"_target_": import_path(type(obj)), **kwargs}
        try:
            rebuilt = build(spec)
        except Exception:  # noqa: BLE001 - any failure means: not describable this way
            return None
        return spec if _same_parameters(obj, rebuilt) else None
    return None


def is_spec(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("_target_"), str)


def _targets(value: Any) -> list[str]:
    """The ``_target_`` of every spec in ``value``, nested ones included."""
    if isinstance(value, Mapping):
        found = [value["_target_"]] if is_spec(value) else []
        return found + [t for v in value.values() for t in _targets(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _targets(v)]
    return []


def build(spec: Mapping[str, Any]) -> Any:
    """The object a spec describes, by Hydra's ``instantiate`` (nested specs built first);
    see :func:`describe`.

    A target that cannot be imported raises :func:`locate`'s ``ImportError``; an error
    raised by a target itself comes as it was raised, not wrapped by Hydra.
    """
    for target in _targets(spec):
        locate(target)
    try:
        made = instantiate(_plain(spec), _convert_="all")
    except InstantiationException as err:
        if err.__cause__ is None:
            raise
        raise err.__cause__ from None
    try:
        setattr(made, SPEC_ATTR, _plain(dict(spec)))
    except (AttributeError, TypeError):
        pass
    return made


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with errors that name the file.

    Nothing but tensors and plain data is unpickled: a file holding anything else (code,
    arbitrary objects) is refused before any of it runs.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise CheckpointLoadError(f"checkpoint {name}: no such file")
    if os.path.getsize(name) == 0:
        raise CheckpointLoadError(f"checkpoint {name} is empty (0 bytes): not a checkpoint")
    try:
        checkpoint = torch.load(name, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointLoadError(
            f"refusing to load checkpoint {name}: it holds objects other than tensors and plain "
            f"data, and loading them could run code. seqmodels checkpoints never do; this file is "
            f"from elsewhere or has been tampered with. (torch.load weights_only=True: "
            f"{str(err).splitlines()[0]})"
        ) from None
    except (EOFError, RuntimeError, OSError) as err:
        raise CheckpointLoadError(
            f"checkpoint {name} cannot be read ({type(err).__name__}: {err}); it is truncated "
            "or not a checkpoint"
        ) from err
    if not isinstance(checkpoint, dict):
        kind = type(checkpoint).__name__
        raise CheckpointLoadError(f"checkpoint {name} holds a {kind}, not a dict")
    return checkpoint


class SequenceTask(L.LightningModule):
    """Base class of the tasks. Subclasses implement :meth:`shared_step`.

    Args:
        optimizer: ``None`` (Adam, lr 1e-3), a factory ``params -> Optimizer`` (e.g.
            ``functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)``) or a mapping
            ``{"name": "sgd"|"adam"|"rmsprop"|"adagrad"|"adamw", **kwargs}``.
        scheduler: ``None``, a factory ``Optimizer -> LRScheduler`` or a mapping
            ``{"name": "exponential"|"step"|"cosine"|"plateau", **kwargs}``
            (see :mod:`seqmodels.tasks.optim`).
        scheduler_interval: step the scheduler every ``"epoch"`` or every ``"step"``.

    Checkpoints store the hyper-parameters as plain data, the encoder as its spec
    (:func:`describe`), so ``Task.load_from_checkpoint(path)`` rebuilds the model with no
    further arguments and loads with ``weights_only=True``. A module argument that cannot be
    described is left out of the hyper-parameters (with a warning): pass it again to
    ``load_from_checkpoint(path, encoder=...)``.
    """

    def __init__(
        self,
        optimizer: OptimizerSpec = None,
        scheduler: SchedulerSpec = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__()
        self.optimizer_spec = optimizer
        self.scheduler_spec = scheduler
        self.scheduler_interval = scheduler_interval

    # --- hyper-parameters and checkpoints ---------------------------------------------------

    def _save_hparams(self, later: tuple[str, ...] = ()) -> None:
        """``save_hyperparameters`` for the calling ``__init__``, as plain data.

        Modules and factories become their specs (:func:`describe`); one that has none is
        left out, so a checkpoint never needs unpickling code. ``later``: arguments the
        subclass stores itself (:meth:`_set_module_hparam`) when they have no spec.
        """
        frame = inspect.currentframe().f_back  # the subclass's __init__
        with warnings.catch_warnings():
            # Modules are replaced by their specs just below.
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`.*")
            self.save_hyperparameters(frame=frame)
        for key, value in list(self._hparams.items()):
            if is_plain(value):
                self._hparams[key] = _plain(value)
                continue
            spec = describe(value)
            if spec is None and key in later:
                del self._hparams[key]
            elif spec is None:
                warnings.warn(
                    f"{type(self).__name__}: the argument {key}={type(value).__name__} has no "
                    f"plain-data description, so checkpoints leave it out; rebuild with "
                    f"load_from_checkpoint(path, {key}=...). (Build it from config, or give "
                    f"it the attribute {SPEC_ATTR} = {{'_target_': 'import.path', **kwargs}}.)",
                    stacklevel=3,
                )
                del self._hparams[key]
            else:
                self._hparams[key] = spec
        self._hparams_initial = copy.deepcopy(self._hparams)

    def _set_module_hparam(self, key: str, obj: Any) -> None:
        """Store ``obj`` (a module or factory) as the hyper-parameter ``key``, by its spec."""
        spec = describe(obj)
        if spec is None:
            warnings.warn(
                f"{type(self).__name__}: {key}={type(obj).__name__} has no plain-data "
                f"description, so checkpoints leave it out; rebuild with "
                f"load_from_checkpoint(path, {key}=...)",
                stacklevel=3,
            )
            return
        self._hparams[key] = spec
        self._hparams_initial[key] = copy.deepcopy(spec)

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: Any,
        map_location: Any = None,
        hparams_file: Any = None,
        strict: bool | None = None,
        weights_only: bool | None = True,
        **kwargs: Any,
    ) -> SequenceTask:
        """Lightning's ``load_from_checkpoint``, loading plain data only (``weights_only``).

        The modules the hyper-parameters describe (:func:`describe`) are rebuilt first; a
        class that cannot be imported fails with a message that names it.
        """
        if weights_only is False:
            raise ValueError(
                "seqmodels checkpoints are plain data: load_from_checkpoint always uses "
                "weights_only=True"
            )
        checkpoint = read_checkpoint(checkpoint_path)
        hparams = checkpoint.get("hyper_parameters") or {}
        for key, value in hparams.items():
            if key not in kwargs and is_spec(value):
                try:
                    kwargs[key] = build(value)
                except ImportError as err:
                    raise CheckpointLoadError(
                        f"{checkpoint_path}: cannot rebuild {cls.__name__}'s {key}: {err}"
                    ) from None
        return super().load_from_checkpoint(
            checkpoint_path,
            map_location=map_location,
            hparams_file=hparams_file,
            strict=strict,
            weights_only=True,
            **kwargs,
        )

    # --- optimisation ------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        return configure_optimization(
            self.parameters(), self.optimizer_spec, self.scheduler_spec, self.scheduler_interval
        )

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # Called before Lightning clips, so this is the raw norm that clipping acts on.
        norms = grad_norm(self, norm_type=2)
        if norms:
            self.log("train/grad_norm", norms["grad_2.0_norm_total"], on_step=True, on_epoch=False)

    # --- metrics and steps -------------------------------------------------------------------

    def _init_stage_metrics(self, make: Callable[[], MetricCollection]) -> None:
        """One metric collection per stage, registered as submodules (moved with the model)."""
        for stage in STAGES:
            setattr(self, f"{stage}_metrics", StageMetrics(make(), prefix=f"{stage}/"))

    def stage_metrics(self, stage: str) -> StageMetrics:
        return getattr(self, f"{stage}_metrics")

    def reset_stage_metrics(self, stage: str) -> None:
        """Empty a stage's metric states (loss included)."""
        metrics = getattr(self, f"{stage}_metrics", None)
        if metrics is not None:
            for module in metrics.modules():
                if isinstance(module, Metric):
                    module.reset()

    # Each loop starts from empty metric states. Lightning resets logged metrics only at the
    # end of an epoch, and the model object in the main process of a ddp_spawn run gets the
    # workers' accumulated states back after fit: the next validate/test (the run's final
    # evaluation of its best checkpoint) then averaged them in, reporting a wrong val/loss.
    def on_train_start(self) -> None:
        self.reset_stage_metrics("train")

    def on_validation_start(self) -> None:
        self.reset_stage_metrics("val")

    def on_test_start(self) -> None:
        self.reset_stage_metrics("test")

    def log_stage(
        self,
        stage: str,
        loss: Tensor,
        items: int,
        preds: Tensor | None = None,
        target: Tensor | None = None,
    ) -> None:
        """Update and log a stage's loss (weighted by ``items``) and metrics, epoch-level."""
        metrics = self.stage_metrics(stage)
        metrics.loss.update(loss.detach(), weight=items)
        self.log(
            f"{stage}/loss", metrics.loss, on_step=False, on_epoch=True, prog_bar=stage == "val"
        )
        if preds is not None:
            metrics.scores.update(preds, target)
            self.log_dict(metrics.scores, on_step=False, on_epoch=True)
        if stage == "train":
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)

    def shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self.shared_step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self.shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self.shared_step(batch, "test")


def require_keys(batch: dict[str, Tensor], keys: tuple[str, ...], task: str) -> None:
    """A clear error when a batch misses a key the task's contract needs."""
    if not isinstance(batch, dict):
        raise ValueError(
            f"{task} expects a dict batch with keys {keys}, got {type(batch).__name__}"
        )
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError(f"{task} batch is missing {missing}; it has keys {sorted(batch)}")
