"""Layers: time. Any cell runs over a sequence, in both directions, stacked, padded or packed."""

from seqmodels.layers.base import BACKENDS, SequenceLayer, check_backend
from seqmodels.layers.bidirectional import Bidirectional
from seqmodels.layers.elman import ElmanLayer
from seqmodels.layers.elman_rnn import DEFAULT_BACKEND, ElmanRNN
from seqmodels.layers.recurrent import Recurrent, scan
from seqmodels.layers.stacked import Stacked

__all__ = [
    "SequenceLayer",
    "Recurrent",
    "Bidirectional",
    "Stacked",
    "ElmanRNN",
    "ElmanLayer",
    "scan",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "check_backend",
]
