"""Encoders built from config: the generic layers over a cell named by a string."""

from __future__ import annotations

from typing import Any

from seqmodels.cells import (
    ElmanCell,
    GRUCell,
    IndRNNCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    RecurrentCell,
)
from seqmodels.layers import Stacked
from seqmodels.tasks.base import SPEC_ATTR, import_path, locate

#: Short names for the cells that ship with seqmodels; any other cell is named by import path.
CELLS: dict[str, type[RecurrentCell]] = {
    "elman": ElmanCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "lnlstm": LayerNormLSTMCell,
    "lngru": LayerNormGRUCell,
    "indrnn": IndRNNCell,
}


def resolve_cell(cell: str | type[RecurrentCell]) -> type[RecurrentCell]:
    """A cell class from a short name (``"elman"``) or an import path (``"pkg.mod.MyCell"``)."""
    if isinstance(cell, type):
        found: Any = cell
    elif cell in CELLS:
        found = CELLS[cell]
    else:
        try:
            found = locate(cell)
        except ImportError as err:  # it names the path and what to do
            raise ValueError(
                f"unknown cell {cell!r}: expected one of {', '.join(sorted(CELLS))} or the import "
                f"path of a seqmodels.RecurrentCell subclass; {err}"
            ) from None
    if not (isinstance(found, type) and issubclass(found, RecurrentCell)):
        raise ValueError(f"cell {cell!r} is {found!r}, not a seqmodels.RecurrentCell subclass")
    return found


def generic_encoder(
    cell: str | type[RecurrentCell],
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    batch_first: bool = True,
    cell_kwargs: dict[str, Any] | None = None,
    weight_dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    zoneout: float = 0.0,
) -> Stacked:
    """:meth:`Stacked.from_cell` over a cell named in config.

    Each cell is built as ``cell(layer_input_size, hidden_size, **cell_kwargs)``; a layer
    above a bidirectional one reads both directions (``2 * hidden_size`` features).
    ``dropout`` sits between stacked layers, as in ``nn.RNN``. ``weight_dropout``,
    ``recurrent_dropout`` and ``zoneout`` are every :class:`~seqmodels.Recurrent` layer's
    (the cell must be a :class:`~seqmodels.ProjectedCell` for a non-zero one).
    """
    cls, kwargs = resolve_cell(cell), dict(cell_kwargs or {})
    regularisers = {
        "weight_dropout": weight_dropout,
        "recurrent_dropout": recurrent_dropout,
        "zoneout": zoneout,
    }
    stacked = Stacked.from_cell(
        lambda size: cls(size, hidden_size, **kwargs),
        input_size,
        num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
        batch_first=batch_first,
        **regularisers,
    )
    # What a checkpoint stores to rebuild it: plain data, the cell by name or import path.
    spec = {
        "_target_": import_path(generic_encoder),
        "cell": cell if isinstance(cell, str) else import_path(cls),
        "input_size": input_size,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "bidirectional": bidirectional,
        "dropout": dropout,
        "batch_first": batch_first,
        "cell_kwargs": kwargs,
        **regularisers,
    }
    setattr(stacked, SPEC_ATTR, spec)
    return stacked
