"""Hand-written back-propagation through time, one ``torch.autograd.Function`` per cell.

A kernel is a cell's fast path, not a second copy of its maths: the cell
(:class:`~seqmodels.ElmanCell`) defines one step and hands its parameters to its kernel in
:meth:`~seqmodels.RecurrentCell.fused_sequence`; layers call that when ``backend="bptt"``.
Kernels sit below the layers, as ``torch._VF`` sits below ``torch.nn.RNN``.
"""

from seqmodels.kernels.elman import ElmanBPTT, elman_bptt

__all__ = ["ElmanBPTT", "elman_bptt"]
