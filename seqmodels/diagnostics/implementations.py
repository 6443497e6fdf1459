"""The one registry of implementations that the benchmark, numerics and compare build.

Each *cell kind* names torch's reference module (``nn.RNN`` for ``"elman"``) and the
seqmodels implementations that must compute the same thing, each built from a reference
module by copying its weights. :func:`build_implementations` seeds, builds one reference,
and returns every implementation holding its own copy of those weights, the reference
first. A gated cell (``"lstm"`` against ``nn.LSTM``, ``"gru"`` against ``nn.GRU``) is one
more entry in :data:`CELLS`.

The reference in the result is a fresh module with its own weights, loaded and then
flattened (``flatten_parameters``): an ``nn.RNN`` whose parameters were re-assigned or are
shared with another module warns on a GPU that its weights are "not part of single
contiguous chunk of memory" and compacts them on every call, which would both spam the
output and slow the reference down in the benchmark.

Example::

    >>> models = build_implementations("elman", seed=0, input_size=3, hidden_size=4)
    >>> list(models)
    ['nn.RNN', 'autograd', 'bptt']
    >>> import torch
    >>> x = torch.randn(5, 2, 3)
    >>> torch.testing.assert_close(models["bptt"](x)[0], models["nn.RNN"](x)[0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from seqmodels.layers.elman_rnn import ElmanRNN

#: Constructor keywords every torch recurrent module shares.
SHARED_OPTIONS = (
    "input_size",
    "hidden_size",
    "num_layers",
    "bias",
    "batch_first",
    "dropout",
    "bidirectional",
)


@dataclass(frozen=True)
class CellKind:
    """A reference module from torch and the implementations compared against it."""

    reference_name: str  # how reports name the reference: "nn.RNN"
    reference: type[nn.RNNBase]
    # name -> a copy of a reference module, weights included
    candidates: Mapping[str, Callable[[nn.RNNBase], nn.Module]]
    options: tuple[str, ...] = field(default=())  # constructor keywords beyond SHARED_OPTIONS

    @property
    def names(self) -> tuple[str, ...]:
        """Every implementation, the reference first."""
        return (self.reference_name, *self.candidates)


CELLS: dict[str, CellKind] = {
    "elman": CellKind(
        "nn.RNN",
        nn.RNN,
        {
            "autograd": partial(ElmanRNN.from_torch, backend="autograd"),
            "bptt": partial(ElmanRNN.from_torch, backend="bptt"),
        },
        options=("nonlinearity",),
    ),
}


def cell_kind(cell: str) -> CellKind:
    """The registry entry of ``cell``; an unknown name lists the known ones."""
    try:
        return CELLS[cell]
    except KeyError:
        raise ValueError(f"unknown cell kind {cell!r}; expected one of {sorted(CELLS)}") from None


def implementation_names(cell: str = "elman") -> tuple[str, ...]:
    """The names of ``cell``'s implementations, the reference first."""
    return cell_kind(cell).names


def own_copy(module: nn.RNNBase, options: tuple[str, ...] = ()) -> nn.RNNBase:
    """A new module of ``module``'s class and configuration with its own flattened copy of
    its weights (``options``: the cell kind's constructor keywords beyond the shared ones)."""
    weight = next(module.parameters())
    kwargs = {name: getattr(module, name) for name in (*SHARED_OPTIONS, *options)}
    copy = type(module)(**kwargs, device=weight.device, dtype=weight.dtype)
    copy.load_state_dict(module.state_dict())  # copies into the copy's own (flat) storage
    copy.flatten_parameters()  # a no-op on the CPU; on cuDNN one contiguous chunk
    return copy.train(module.training)


def copies_of(reference: nn.RNNBase, cell: str = "elman") -> dict[str, nn.Module]:
    """Every implementation of ``cell`` holding a copy of ``reference``'s weights."""
    kind = cell_kind(cell)
    if not isinstance(reference, kind.reference):
        raise ValueError(
            f"a {cell!r} reference must be a {kind.reference.__name__}, "
            f"got {type(reference).__name__}"
        )
    models: dict[str, nn.Module] = {kind.reference_name: own_copy(reference, kind.options)}
    for name, build in kind.candidates.items():
        models[name] = build(reference)
    return models


def build_implementations(
    cell: str = "elman",
    *,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **options: Any,
) -> dict[str, nn.Module]:
    """Seed (when ``seed`` is given), build ``cell``'s reference module with torch's default
    initialisation from ``options`` (its constructor keywords), and return every
    implementation with a copy of its weights, the reference first."""
    kind = cell_kind(cell)
    allowed = {*SHARED_OPTIONS, *kind.options}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"{cell!r} implementations take {sorted(allowed)}, not {unknown}")
    if seed is not None:
        torch.manual_seed(seed)
    reference = kind.reference(**options, device=device, dtype=dtype)
    return copies_of(reference, cell)
