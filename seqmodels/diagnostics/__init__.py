"""Diagnostics: numerics against ``torch.nn.RNN``, gradients through time, throughput, plots.

* :mod:`~seqmodels.diagnostics.numerics`: largest differences between ``nn.RNN`` and
  ``ElmanRNN``'s two backends (``seqmodels-compare mode=numerics``);
* :class:`GradientDiagnostics`: ‖∂L/∂h_t‖ per time step and the gradient norm before/after
  clipping, as a Lightning callback with a heat map;
* :class:`RunPlots`: learning curves, confusion matrix and attention map of a run;
* :class:`Throughput`: training tokens per second;
* :mod:`~seqmodels.diagnostics.plots`: the figures themselves.
"""

from seqmodels.diagnostics.gradients import GradientDiagnostics
from seqmodels.diagnostics.run_plots import RunPlots
from seqmodels.diagnostics.throughput import Throughput

__all__ = ["GradientDiagnostics", "RunPlots", "Throughput"]
