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
    ['nn.RNN', 'autograd', 'bptt', 'torch', 'auto']
    >>> import torch
    >>> x = torch.randn(5, 2, 3)
    >>> torch.testing.assert_close(models["bptt"](x)[0], models["nn.RNN"](x)[0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from seqmodels.cells.gated import GRUCell, LSTMCell
from seqmodels.layers.bidirectional import Bidirectional
from seqmodels.layers.elman_rnn import ElmanRNN
from seqmodels.layers.gated import GRU, LSTM
from seqmodels.layers.recurrent import Recurrent
from seqmodels.layers.research import IndRNN, LayerNormGRU, LayerNormLSTM, ResearchRNN
from seqmodels.layers.stacked import Stacked

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
            "torch": partial(ElmanRNN.from_torch, backend="torch"),
            "auto": partial(ElmanRNN.from_torch, backend="auto"),
        },
        options=("nonlinearity",),
    ),
    "lstm": CellKind(
        "nn.LSTM",
        nn.LSTM,
        {
            "autograd": partial(LSTM.from_torch, backend="autograd"),
            "bptt": partial(LSTM.from_torch, backend="bptt"),
            "torch": partial(LSTM.from_torch, backend="torch"),
            "auto": partial(LSTM.from_torch, backend="auto"),
            "cell loop": lambda reference: plain_cell_loop(LSTM, reference),
        },
    ),
    "gru": CellKind(
        "nn.GRU",
        nn.GRU,
        {
            "autograd": partial(GRU.from_torch, backend="autograd"),
            "bptt": partial(GRU.from_torch, backend="bptt"),
            "torch": partial(GRU.from_torch, backend="torch"),
            "auto": partial(GRU.from_torch, backend="auto"),
            "cell loop": lambda reference: plain_cell_loop(GRU, reference),
        },
    ),
    # The docs' user cell (docs/cells.md), written only as its step, beside nn.LSTM: a
    # different cell (three gates), so it gets fresh weights of the reference's sizes, not
    # a copy, and the numerics never compare it with the reference.
    "user": CellKind(
        "nn.LSTM",
        nn.LSTM,
        {
            "engine": lambda reference: user_cell_layers(reference, "bptt"),
            "step loop": lambda reference: user_cell_layers(reference, "autograd"),
        },
    ),
    # The research cells torch lacks, beside torch's closest module: different cells, so
    # fresh weights of the reference's sizes, never compared with it by the numerics.
    "lnlstm": CellKind(
        "nn.LSTM",
        nn.LSTM,
        {
            "engine": lambda reference: research_module(LayerNormLSTM, reference, "bptt"),
            "step loop": lambda reference: research_module(LayerNormLSTM, reference, "autograd"),
        },
    ),
    "lngru": CellKind(
        "nn.GRU",
        nn.GRU,
        {
            "engine": lambda reference: research_module(LayerNormGRU, reference, "bptt"),
            "step loop": lambda reference: research_module(LayerNormGRU, reference, "autograd"),
        },
    ),
    "indrnn": CellKind(
        "nn.RNN",
        nn.RNN,
        {
            "engine": lambda reference: research_module(IndRNN, reference, "bptt"),
            "step loop": lambda reference: research_module(IndRNN, reference, "autograd"),
        },
    ),
}


def research_module(cls: type[ResearchRNN], reference: nn.RNNBase, backend: str) -> nn.Module:
    """A ``cls`` shaped as ``reference`` (sizes, layers, directions, bias, batch-first), on
    ``backend``, with fresh weights on the reference's device and dtype."""
    weight = next(reference.parameters())
    return cls(
        reference.input_size,
        reference.hidden_size,
        reference.num_layers,
        bias=reference.bias,
        batch_first=reference.batch_first,
        bidirectional=reference.bidirectional,
        backend=backend,
        device=weight.device,
        dtype=weight.dtype,
    )


def user_cell_layers(reference: nn.RNNBase, backend: str) -> nn.Module:
    """:class:`~seqmodels.diagnostics.user_cell.CIFGCell` layers shaped as ``reference``
    (sizes, layers, directions, batch-first), on ``backend``."""
    from seqmodels.diagnostics.user_cell import CIFGCell

    weight = next(reference.parameters())
    directions = 2 if reference.bidirectional else 1

    def one(inputs: int) -> Recurrent:
        cell = CIFGCell(inputs, reference.hidden_size, device=weight.device, dtype=weight.dtype)
        return Recurrent(cell, backend=backend)

    layers = []
    for index in range(reference.num_layers):
        inputs = reference.input_size if index == 0 else reference.hidden_size * directions
        layers.append(Bidirectional(one(inputs), one(inputs)) if directions == 2 else one(inputs))
    model = layers[0] if len(layers) == 1 else Stacked(layers)
    model.batch_first = reference.batch_first
    return model


def plain_cell_loop(drop_in: type[nn.Module], reference: nn.RNNBase) -> nn.Module:
    """``drop_in.from_torch(reference, backend="autograd")`` with every gated cell stripped of
    its ``project_input`` fast path: the layers then call the cell's ``forward(x_t, state)``
    once per step, which is what a cell written on :class:`~seqmodels.RecurrentCell` with
    only ``forward`` runs (the "autograd at least as fast as a plain cell loop" baseline)."""
    model = drop_in.from_torch(reference, backend="autograd")
    for module in model.modules():
        if isinstance(module, LSTMCell | GRUCell):
            cls = type(module)
            # Instance attributes: the layers see no fast path and step ``forward``, which
            # projects each x_t on its own (T small GEMMs instead of one large one).
            module.forward = partial(_step_alone, cls, module)
            module.project_input = lambda x: None
    return model


def _step_alone(cls: type, cell: nn.Module, x_t: torch.Tensor, state: Any) -> Any:
    return cls.forward_projected(cell, cls.project_input(cell, x_t), state)


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


def copies_of(
    reference: nn.RNNBase, cell: str = "elman", names: Sequence[str] | None = None
) -> dict[str, nn.Module]:
    """Every implementation of ``cell`` (or those in ``names``; the reference always comes
    first) holding a copy of ``reference``'s weights."""
    kind = cell_kind(cell)
    unknown = sorted(set(names or ()) - set(kind.names))
    if unknown:
        raise ValueError(
            f"unknown {cell!r} implementation(s) {unknown}; expected some of {list(kind.names)}"
        )
    if not isinstance(reference, kind.reference):
        raise ValueError(
            f"a {cell!r} reference must be a {kind.reference.__name__}, "
            f"got {type(reference).__name__}"
        )
    models: dict[str, nn.Module] = {kind.reference_name: own_copy(reference, kind.options)}
    for name, build in kind.candidates.items():
        if names is None or name in names:
            models[name] = build(reference)
    return models


def build_implementations(
    cell: str = "elman",
    *,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    names: Sequence[str] | None = None,
    **options: Any,
) -> dict[str, nn.Module]:
    """Seed (when ``seed`` is given), build ``cell``'s reference module with torch's default
    initialisation from ``options`` (its constructor keywords), and return every
    implementation (or those in ``names``) with a copy of its weights, the reference first."""
    kind = cell_kind(cell)
    allowed = {*SHARED_OPTIONS, *kind.options}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"{cell!r} implementations take {sorted(allowed)}, not {unknown}")
    if seed is not None:
        torch.manual_seed(seed)
    reference = kind.reference(**options, device=device, dtype=dtype)
    return copies_of(reference, cell, names)
