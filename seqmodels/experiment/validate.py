"""Config checks that fail at start and name the valid keys.

Two kinds of node are checked:

* typed nodes (the schemas of :mod:`seqmodels.experiment.schema`): OmegaConf rejects an
  unknown key while Hydra composes; :func:`explain_config_error` turns that error into one
  that lists the node's keys and the closest match;
* ``_target_`` nodes (data, model, encoder, callbacks, loggers): :func:`check_targets`
  compares their keys with the signature of the class or function they name.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from typing import Any

import torch
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig
from omegaconf.errors import (
    ConfigAttributeError,
    InterpolationResolutionError,
    OmegaConfBaseException,
)
from omegaconf.errors import ConfigKeyError as OmegaKeyError

# Keys Hydra's instantiate reads itself; they are never constructor arguments.
_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


class ConfigKeyError(KeyError):
    """A config key that the node (schema or ``_target_``) does not accept."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it as written
        return str(self.args[0])


def key_hint(key: str, valid: Iterable[str]) -> str:
    """``valid keys: a, b, c; did you mean 'b'?`` for an unknown ``key``."""
    valid = sorted(str(v) for v in valid)
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"valid keys: {', '.join(valid)}{hint}"


def _target_parameters(target: str) -> tuple[set[str], bool] | None:
    """Argument names of a ``_target_`` and whether it takes ``**kwargs`` (None: unknown)."""
    try:
        obj = get_object(target)
    except Exception as err:  # noqa: BLE001 - re-raised with the path that named it
        raise ConfigKeyError(f"_target_ {target!r} cannot be imported: {err}") from err
    if inspect.isclass(obj) and issubclass(obj, torch.nn.RNNBase):
        return _torch_rnn_parameters(obj), False
    try:
        sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    except (TypeError, ValueError):
        return None  # builtins without a signature: let instantiate speak
    params = sig.parameters.values()
    names = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    names.discard("self")
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _torch_rnn_parameters(cls: type) -> set[str]:
    """What ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` take: their ``__init__(*args, **kwargs)``
    passes everything to ``RNNBase.__init__`` (whose ``mode`` they set themselves), and
    ``nn.RNN`` reads ``nonlinearity`` first."""
    names = set(inspect.signature(torch.nn.RNNBase.__init__).parameters) - {"self", "mode"}
    if issubclass(cls, torch.nn.RNN):
        names.add("nonlinearity")
    if not issubclass(cls, torch.nn.LSTM):
        names.discard("proj_size")  # nn.RNN and nn.GRU refuse it
    return names


def check_targets(cfg: Any, path: str = "") -> None:
    """Raise :class:`ConfigKeyError` for a key that a ``_target_`` node's target does not take.

    Walks the whole tree without resolving interpolations (sizes read from the data at run
    time may not be known yet).
    """
    if not path and isinstance(cfg, DictConfig) and "model" in cfg:
        from seqmodels.experiment.encoder_keys import check_encoder_keys

        check_encoder_keys(cfg._get_node("model"))  # all of an encoder's unknown keys at once
    if isinstance(cfg, DictConfig):
        target = cfg._get_node("_target_") if "_target_" in cfg else None
        if target is not None and not target._is_interpolation():
            spec = _target_parameters(str(target._value()))
            if spec is not None:
                names, var_kw = spec
                for key in cfg.keys():
                    key = str(key)
                    if key in _HYDRA_KEYS or var_kw or key in names:
                        continue
                    where = f"{path}.{key}" if path else key
                    raise ConfigKeyError(
                        f"config key {where!r} is not an argument of {target._value()}; "
                        f"{key_hint(key, names)}"
                    )
        for key in cfg.keys():
            child = cfg._get_node(key)
            check_targets(child, f"{path}.{key}" if path else str(key))
    elif isinstance(cfg, ListConfig):
        for i, child in enumerate(cfg._iter_ex(resolve=False)):
            check_targets(child, f"{path}[{i}]")


def explain_config_error(err: BaseException) -> str:
    """A composition error's message, plus the valid keys of the node that refused a key."""
    message = str(err)
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    if cause is None:
        return message
    unknown_key = isinstance(cause, ConfigAttributeError | OmegaKeyError) and not isinstance(
        cause, InterpolationResolutionError
    )
    parent = getattr(cause, "parent_node", None)
    key = getattr(cause, "key", None)
    full_key = getattr(cause, "full_key", None) or key
    if unknown_key and isinstance(parent, DictConfig) and key is not None and key not in parent:
        from seqmodels.experiment.encoder_keys import regulariser_note

        valid = [str(k) for k in parent.keys()]
        target = parent._get_node("_target_") if "_target_" in parent else None
        note = "" if target is None else regulariser_note([str(key)], str(target._value()))
        hint = f"{key_hint(str(key), valid)}{note}"
        return f"{message}\nunknown config key {str(full_key)!r}: {hint}"
    return f"{message}\n{cause}" if str(cause) not in message else message
