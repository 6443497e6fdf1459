"""Hand-written back-propagation through time, truncated BPTT and gradient checking."""

from seqmodels.bptt.elman import ElmanBPTT, elman_bptt
from seqmodels.bptt.gradcheck import GradCheckReport, gradient_check
from seqmodels.bptt.truncated import detach_state, split_chunks

__all__ = [
    "ElmanBPTT",
    "elman_bptt",
    "gradient_check",
    "GradCheckReport",
    "detach_state",
    "split_chunks",
]
