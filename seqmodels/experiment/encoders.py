"""Encoders built from config: the generic layers over a cell named by a string."""

from __future__ import annotations

from typing import Any

from hydra.utils import get_object
from torch import nn

from seqmodels.cells import ElmanCell, RecurrentCell
from seqmodels.layers import Bidirectional, Recurrent, Stacked

#: Short names for the cells that ship with seqmodels; any other cell is named by import path.
CELLS: dict[str, type[RecurrentCell]] = {"elman": ElmanCell}


def resolve_cell(cell: str | type[RecurrentCell]) -> type[RecurrentCell]:
    """A cell class from a short name (``"elman"``) or an import path (``"pkg.mod.MyCell"``)."""
    if isinstance(cell, type):
        found: Any = cell
    elif cell in CELLS:
        found = CELLS[cell]
    else:
        try:
            found = get_object(cell)
        except Exception as err:  # noqa: BLE001 - the message names what was expected
            raise ValueError(
                f"unknown cell {cell!r}: expected one of {', '.join(sorted(CELLS))} or the import "
                f"path of a seqmodels.RecurrentCell subclass ({err})"
            ) from err
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
) -> nn.Module:
    """``Recurrent`` / ``Bidirectional`` layers of ``cell``, stacked ``num_layers`` deep.

    Each cell is built as ``cell(input_size, hidden_size, **cell_kwargs)``; a layer above a
    bidirectional one reads both directions (``2 * hidden_size`` features). ``dropout`` sits
    between stacked layers, as in ``nn.RNN``.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    cls, kwargs = resolve_cell(cell), dict(cell_kwargs or {})
    single = num_layers == 1 and dropout == 0.0
    # A lone layer reads the batch layout itself; inside Stacked, Stacked does.
    layout = {"batch_first": batch_first} if single else {}

    def layer(size: int) -> nn.Module:
        if bidirectional:
            return Bidirectional(
                Recurrent(cls(size, hidden_size, **kwargs)),
                Recurrent(cls(size, hidden_size, **kwargs)),
                **layout,
            )
        return Recurrent(cls(size, hidden_size, **kwargs), **layout)

    layers = [layer(input_size)]
    for _ in range(num_layers - 1):
        layers.append(layer(layers[-1].output_size))
    if single:
        return layers[0]
    return Stacked(layers, dropout=dropout, batch_first=batch_first)
