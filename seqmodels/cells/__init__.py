"""Cells: one time step of a recurrent network (see :class:`RecurrentCell`)."""

from seqmodels.cells.base import RecurrentCell, State
from seqmodels.cells.elman import ElmanCell

__all__ = ["RecurrentCell", "ElmanCell", "State"]
