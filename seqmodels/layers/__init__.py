"""Layers: time. Any cell runs over a sequence, in both directions, stacked, padded or packed."""

from seqmodels.layers.base import SequenceLayer
from seqmodels.layers.bidirectional import Bidirectional
from seqmodels.layers.elman_layer import ElmanLayer
from seqmodels.layers.elman_rnn import ElmanRNN
from seqmodels.layers.recurrent import Recurrent, scan
from seqmodels.layers.sequence import Lengths, reverse_padded
from seqmodels.layers.stacked import Stacked

__all__ = [
    "SequenceLayer",
    "Recurrent",
    "Bidirectional",
    "Stacked",
    "ElmanRNN",
    "ElmanLayer",
    "Lengths",
    "reverse_padded",
    "scan",
]
