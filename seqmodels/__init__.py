"""seqmodels: recurrent sequence models in PyTorch.

Cells are one time step (:class:`RecurrentCell`, :class:`ElmanCell`, :class:`LSTMCell`,
:class:`GRUCell`); layers run them over time (:class:`Recurrent`, :class:`Bidirectional`,
:class:`Stacked`); :class:`ElmanRNN`, :class:`LSTM` and :class:`GRU` are drop-ins for
``torch.nn.RNN``, ``nn.LSTM`` and ``nn.GRU``, with a hand-written BPTT, an autograd, a torch
and an ``auto`` backend (docs/backends.md).

The names below are loaded on first use, so importing one package (``seqmodels.core``,
``seqmodels.data``, ...) loads only that package and those below it (docs/architecture.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "RecurrentCell": "seqmodels.cells",
    "ProjectedCell": "seqmodels.cells",
    "ElmanCell": "seqmodels.cells",
    "LSTMCell": "seqmodels.cells",
    "LSTMPCell": "seqmodels.cells",
    "GRUCell": "seqmodels.cells",
    "LayerNormLSTMCell": "seqmodels.cells",
    "LayerNormGRUCell": "seqmodels.cells",
    "IndRNNCell": "seqmodels.cells",
    "SequenceLayer": "seqmodels.layers",
    "Recurrent": "seqmodels.layers",
    "Bidirectional": "seqmodels.layers",
    "Stacked": "seqmodels.layers",
    "ElmanRNN": "seqmodels.layers",
    "LSTM": "seqmodels.layers",
    "GRU": "seqmodels.layers",
    "LayerNormLSTM": "seqmodels.layers",
    "LayerNormGRU": "seqmodels.layers",
    "IndRNN": "seqmodels.layers",
    "ElmanLayer": "seqmodels.layers",
    "gradient_check": "seqmodels.gradcheck",
    "GradCheckReport": "seqmodels.gradcheck",
    "detach_state": "seqmodels.core",
    "split_chunks": "seqmodels.core",
}

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
    "ElmanLayer",
    "gradient_check",
    "GradCheckReport",
    "detach_state",
    "split_chunks",
]
assert set(__all__) == set(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from seqmodels.cells import (
        ElmanCell,
        GRUCell,
        IndRNNCell,
        LayerNormGRUCell,
        LayerNormLSTMCell,
        LSTMCell,
        LSTMPCell,
        ProjectedCell,
        RecurrentCell,
    )
    from seqmodels.core import detach_state, split_chunks
    from seqmodels.gradcheck import GradCheckReport, gradient_check
    from seqmodels.layers import (
        GRU,
        LSTM,
        Bidirectional,
        ElmanLayer,
        ElmanRNN,
        IndRNN,
        LayerNormGRU,
        LayerNormLSTM,
        Recurrent,
        SequenceLayer,
        Stacked,
    )


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seqmodels' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # cache: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
