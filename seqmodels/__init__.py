"""seqmodels: recurrent sequence models in PyTorch.

Cells are one time step (:class:`RecurrentCell`, :class:`ElmanCell`); layers run them over
time (:class:`Recurrent`, :class:`Bidirectional`, :class:`Stacked`); :class:`ElmanRNN` is a
drop-in for ``torch.nn.RNN`` with an autograd and a hand-written BPTT backend.
"""

from seqmodels.cells import ElmanCell, RecurrentCell
from seqmodels.core import detach_state, split_chunks
from seqmodels.gradcheck import GradCheckReport, gradient_check
from seqmodels.layers import (
    Bidirectional,
    ElmanLayer,
    ElmanRNN,
    Recurrent,
    SequenceLayer,
    Stacked,
)

__version__ = "0.1.0"

__all__ = [
    "RecurrentCell",
    "ElmanCell",
    "SequenceLayer",
    "Recurrent",
    "Bidirectional",
    "Stacked",
    "ElmanRNN",
    "ElmanLayer",
    "gradient_check",
    "GradCheckReport",
    "detach_state",
    "split_chunks",
]
