"""The ground floor: what every other package of seqmodels shares. It imports nothing above it.

* :mod:`~seqmodels.core.state` -- ``State`` (a tensor, or a tuple for LSTM-like cells) and
  its mappers: :func:`map_state`, :func:`detach_state`, :func:`split_state`,
  :func:`cat_states`, and :func:`split_chunks` for truncated BPTT.
* :mod:`~seqmodels.core.padding` -- :class:`Lengths`, the one mask (:func:`length_mask`),
  the one per-sequence reversal (:func:`reverse_padded`) and ``IGNORE_INDEX``.
* :mod:`~seqmodels.core.errors` -- the exception types shared with ``torch.nn.RNN``'s contract.
"""

from seqmodels.core.errors import ArgumentTypeError, ShapeError, StateTypeError
from seqmodels.core.padding import IGNORE_INDEX, Lengths, length_mask, make_lengths, reverse_padded
from seqmodels.core.state import (
    State,
    cat_states,
    detach_state,
    map_state,
    split_chunks,
    split_state,
)

__all__ = [
    "State",
    "map_state",
    "detach_state",
    "split_state",
    "cat_states",
    "split_chunks",
    "Lengths",
    "make_lengths",
    "length_mask",
    "reverse_padded",
    "IGNORE_INDEX",
    "ShapeError",
    "StateTypeError",
    "ArgumentTypeError",
]
