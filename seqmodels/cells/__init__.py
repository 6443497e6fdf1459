"""Cells: one time step of a recurrent network (see :class:`RecurrentCell`)."""

from seqmodels.cells.base import ProjectedCell, RecurrentCell
from seqmodels.cells.elman import ElmanCell
from seqmodels.cells.gated import GRUCell, LSTMCell, LSTMPCell
from seqmodels.cells.indrnn import IndRNNCell
from seqmodels.cells.layernorm import LayerNormGRUCell, LayerNormLSTMCell
from seqmodels.core.state import State

__all__ = [
    "RecurrentCell",
    "ProjectedCell",
    "ElmanCell",
    "LSTMCell",
    "LSTMPCell",
    "GRUCell",
    "LayerNormLSTMCell",
    "LayerNormGRUCell",
    "IndRNNCell",
    "State",
]
