"""Keys an encoder does not take, all at once, with the override that removes them.

Presets are encoder-agnostic (Elman-only settings such as ``nonlinearity`` or ``init``
live in encoder options: ``model/encoder=elman_relu``, ``irnn``), but a user override or
an own preset may still set a key that the chosen encoder does not take, e.g.
``model/encoder=lstm model.encoder.nonlinearity=relu``. Instead of failing on one key per
run, :func:`check_encoder_keys` lists every such key of every built argument of the model
(``model.encoder``, ``model.decoder_cell``, and the ``cell_kwargs`` of the generic encoder
against its cell) and prints the command-line override that deletes them::

    model.encoder (seqmodels.LSTM, model/encoder=lstm) does not take 'init2', 'nonlinearity'.
    Remove them with the override: '~model.encoder.init2' '~model.encoder.nonlinearity'
    (or choose an encoder that takes them). valid keys: ...

It runs first in :func:`~seqmodels.experiment.validate.check_targets`, before any work.
seqmodels' regularisers (``weight_dropout``, ``recurrent_dropout``, ``zoneout``) set on an
encoder without them (``model/encoder=torch_rnn``: torch's own module) are named as such,
with the seqmodels encoders that take them (:func:`regulariser_note`).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from seqmodels.experiment.validate import _HYDRA_KEYS, ConfigKeyError, _target_parameters
from seqmodels.layers.dropin import REGULARISERS


def regulariser_note(keys: list[str], target: str) -> str:
    """A sentence, on a line of its own, for the regularisers among ``keys`` that
    ``target`` does not take (``""`` when there are none)."""
    named = [k for k in keys if k in REGULARISERS]
    if not named:
        return ""
    which = " and ".join(repr(k) for k in named)
    one = len(named) == 1
    return (
        f"\n{which} {'is a seqmodels regulariser' if one else 'are seqmodels regularisers'}"
        f"; {target} does not take {'it' if one else 'them'}. Use a seqmodels "
        "encoder: model/encoder=elman, lstm or gru (the drop-ins for torch.nn.RNN, LSTM, GRU), "
        "lnlstm, lngru, indrnn or generic"
    )


def _choice(group: str) -> str | None:
    """The option Hydra chose for ``group`` (``"lstm"`` for model/encoder), if Hydra runs."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices.get(group)
    except Exception:  # noqa: BLE001 - outside a Hydra run there is no choice to name
        return None


def unknown_keys(node: DictConfig) -> tuple[list[str], set[str]]:
    """The keys of a ``_target_`` node its target does not take, and the keys it does."""
    target = node._get_node("_target_")
    if target is None or target._is_interpolation():
        return [], set()
    spec = _target_parameters(str(target._value()))
    if spec is None or spec[1]:  # unknown signature, or **kwargs: anything goes
        return [], set()
    names = spec[0]
    unknown = [str(k) for k in node.keys() if str(k) not in _HYDRA_KEYS and str(k) not in names]
    unknown += _unknown_cell_kwargs(node)
    return sorted(unknown), names


def _unknown_cell_kwargs(node: DictConfig) -> list[str]:
    """``cell_kwargs.KEY`` entries the generic encoder's cell does not take."""
    kwargs = node.get("cell_kwargs") if "cell_kwargs" in node else None
    cell = node._get_node("cell") if "cell" in node else None
    if not isinstance(kwargs, DictConfig) or not kwargs or cell is None:
        return []
    if cell._is_interpolation():
        return []
    from seqmodels.experiment.encoders import resolve_cell

    try:
        cls = resolve_cell(str(cell._value()))
    except ValueError:
        return []  # the generic encoder names the problem itself
    spec = _target_parameters(f"{cls.__module__}.{cls.__qualname__}")
    if spec is None or spec[1]:
        return []
    return [f"cell_kwargs.{k}" for k in kwargs.keys() if str(k) not in spec[0]]


def check_encoder_keys(model: Any, path: str = "model") -> None:
    """Raise one :class:`ConfigKeyError` naming every key that an encoder (any ``_target_``
    child of the ``model`` config) does not take, and the override that removes them."""
    if not isinstance(model, DictConfig):
        return
    problems = []
    for key in model.keys():
        node = model._get_node(key)
        if not (isinstance(node, DictConfig) and "_target_" in node):
            continue
        unknown, names = unknown_keys(node)
        if not unknown:
            continue
        where = f"{path}.{key}"
        target = str(node._get_node("_target_")._value())
        choice = _choice(f"{path}/{key}")
        chosen = f", {path}/{key}={choice}" if choice else ""
        keys = ", ".join(repr(k) for k in unknown)
        removal = " ".join(f"'~{where}.{k}'" for k in unknown)
        problems.append(
            f"{where} ({target}{chosen}) does not take {keys}. Remove "
            f"{'it' if len(unknown) == 1 else 'them'} with the override: {removal} "
            f"(or choose an encoder that takes {'it' if len(unknown) == 1 else 'them'}); "
            f"valid keys: {', '.join(sorted(names))}{regulariser_note(unknown, target)}"
        )
    if problems:
        raise ConfigKeyError("\n".join(problems))
