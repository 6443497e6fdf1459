"""Layers: time. Any cell runs over a sequence, in both directions, stacked, padded or packed."""

from seqmodels.layers.backends import (
    BACKENDS,
    CallTraits,
    Resolution,
    check_backend,
    resolve_backend,
)
from seqmodels.layers.base import SequenceLayer
from seqmodels.layers.bidirectional import Bidirectional
from seqmodels.layers.dropin import DEFAULT_BACKEND, DropInRNN
from seqmodels.layers.elman import ElmanLayer
from seqmodels.layers.elman_rnn import ElmanRNN
from seqmodels.layers.gated import GRU, LSTM
from seqmodels.layers.recurrent import Recurrent, scan
from seqmodels.layers.research import IndRNN, LayerNormGRU, LayerNormLSTM, ResearchRNN
from seqmodels.layers.stacked import Stacked

__all__ = [
    "SequenceLayer",
    "Recurrent",
    "Bidirectional",
    "Stacked",
    "ElmanRNN",
    "LSTM",
    "GRU",
    "LayerNormLSTM",
    "LayerNormGRU",
    "IndRNN",
    "ResearchRNN",
    "DropInRNN",
    "ElmanLayer",
    "scan",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "check_backend",
    "resolve_backend",
    "CallTraits",
    "Resolution",
]
