"""Hand-written back-propagation through time (see :mod:`seqmodels.bptt.elman`)."""

from seqmodels.bptt.elman import ElmanBPTT, elman_bptt

__all__ = ["ElmanBPTT", "elman_bptt"]
