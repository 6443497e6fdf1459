"""Diagnostics: numerics against ``torch.nn.RNN``, gradients through time, throughput, plots.

* :mod:`~seqmodels.diagnostics.implementations`: the one registry of what is compared
  (per cell kind: torch's module and seqmodels' implementations, same weights);
* :mod:`~seqmodels.diagnostics.numerics`: largest differences between ``nn.RNN`` and
  ``ElmanRNN``'s two backends, TF32 off (``seqmodels-compare mode=numerics``;
  :mod:`~seqmodels.diagnostics.precision`);
* :mod:`~seqmodels.diagnostics.speed`: the side-by-side timings of ``seqmodels-bench``;
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
