r"""The compiled form of the IndRNN definition: its whole time walk, one C++ pass each way.

:class:`~seqmodels.IndRNNCell` is a definition on the engine (:mod:`seqmodels.kernels.engine`:
the Elman step with a diagonal recurrence). Its step is an elementwise product and an
activation, so on the engine a sequence costs a few dispatched ops per step each way and
little else: the per-step overhead is the whole cost, and the engine trails ``torch.nn.RNN``
of the same size, whose steps are GEMMs. Each unit depends only on its own past, so the walk
needs no GEMM at all: the loops in ``csrc/diagonal_steps.cpp`` (built with the gated loops by
:mod:`seqmodels.kernels.compiled`) do the whole recurrence in one pass over the sequence each
way, with an inner loop over the units that the compiler vectorises. To time it:
``seqmodels-bench cell=indrnn configs=[A,F]`` (the engine row runs this walk, beside
``torch.nn.RNN`` of the same size); ``SEQMODELS_COMPILED=0`` runs the engine instead.
``tests/test_indrnn_kernel.py`` holds it to the definition: values and every gradient.

Forward (``a_t = W_{ih} x_t + b_{ih} + b_{hh}``, all steps in one GEMM under autograd, as
the engine projects; ``h_0`` given)::

    z_t = a_t + w_hh * h_{t-1}
    h_t = act(z_t)                                    act = relu or tanh

Backward, given :math:`G_t = \partial L / \partial h_t` from above the layer and
:math:`\partial L / \partial h_T` from the final state:

.. math::
    \delta_t = \big(G_t + w_{hh} \odot \delta_{t+1}\big) \odot \mathrm{act}'(z_t),
    \qquad \delta_{T+1} = 0,

with :math:`\mathrm{relu}'(z_t) = [h_t > 0]` and :math:`\tanh'(z_t) = 1 - h_t^2`, then

.. math::
    \frac{\partial L}{\partial a_t} = \delta_t, \quad
    \frac{\partial L}{\partial w_{hh}} = \sum_{t, n} \delta_t \odot h_{t-1}, \quad
    \frac{\partial L}{\partial h_0} = w_{hh} \odot \delta_1,

and autograd takes :math:`\partial L / \partial a` through the input projection (``dx``,
``dW_ih`` and the biases, each one GEMM or sum over the sequence).

Padding and direction as the engine: padded inputs are zeroed before the projection, outputs
are zero at padded steps and their deltas too (nothing flows through padding), ``dL/dh_n``
enters at each sequence's own last step; ``reverse=True`` (no padding) walks from the last
step.

Recurrent dropout (``z_t`` reads ``w_hh * m * h_{t-1}``) and zoneout (``h_t = d_t h_{t-1} +
(1 - d_t) h~_t``) run inside the compiled walk, with the masks the layer drew, as on the
engine (:mod:`~seqmodels.kernels.regularisation`; the equations are in the C++ file's header).

The compiled walk runs where it applies (CPU, float32/float64, no autocast, no ``torch.func``
transform or forward-mode dual, the extension built); everywhere else the cell runs on the
engine. A double backward or batched gradient of the compiled walk is the ``torch.func.vjp``
of the engine's own walk (:class:`~seqmodels.kernels.engine.EngineBPTT`, out of place under
the transform), the same maths as :func:`~seqmodels.kernels.engine.definition`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from seqmodels.cells.indrnn import IndRNNCell
from seqmodels.kernels import compiled
from seqmodels.kernels.common import (
    in_place_applies,
    last_step_index,
    needs_out_of_place,
    real_steps,
    recompute_vjp,
    zero_padding,
)
from seqmodels.kernels.engine import EngineBPTT, Walk, engine_kernel
from seqmodels.kernels.regularisation import Regularisation, loop_inputs


def indrnn_cell_kernel(
    cell: IndRNNCell,
    x: Tensor,
    state: Tensor,
    lengths: Tensor | None,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, Tensor]:
    """The kernel of :class:`~seqmodels.IndRNNCell`: the compiled walk where it applies,
    else the engine. Takes recurrent dropout's mask and zoneout's ``d``
    (:class:`~seqmodels.kernels.regularisation.Regularisation`) as the engine does."""
    weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    tensors = [t for t in (x, state, *weights) if t is not None]
    if (
        (reverse and lengths is not None)  # the engine's error
        or x.shape[0] == 0
        or not in_place_applies(*tensors)
        or compiled.usable(*tensors) is None
    ):
        return engine_kernel(cell, x, state, lengths, reverse, regularisation)
    a, last = project(cell, x, lengths, reverse)
    walk = Walk(cell, (), 1, False, reverse, regularisation)
    return DiagonalWalk.apply(a, cell.weight_hh, state, walk, lengths, last)


def project(
    cell: IndRNNCell, x: Tensor, lengths: Tensor | None, reverse: bool
) -> tuple[Tensor, Tensor]:
    """The walk's inputs: the input projection ``a`` ``(T, N, H)`` (autograd's GEMM, padded
    steps zeroed first) and each sequence's last processed step ``(N,)``."""
    steps, batch = x.shape[0], x.shape[1]
    a = cell.project_input(zero_padding(x, real_steps(lengths, steps)))
    return a, last_step_index(lengths, steps, batch, reverse)


indrnn_cell_kernel.takes_regularisation = True  # type: ignore[attr-defined]


class DiagonalWalk(torch.autograd.Function):
    """``(a, w_hh, h0, walk, lengths, last) -> (output, h_n)``: the walk from the input
    projection ``a`` ``(T, N, H)`` (biases included), compiled; ``walk``
    (:class:`~seqmodels.kernels.engine.Walk`) holds the cell, the direction and the
    regularisers' masks, as the engine's does.

    ``w_hh`` ``(H,)``, ``h0`` ``(N, H)``, ``lengths`` ``(N,)`` int64 or ``None``, ``last``
    their :func:`~seqmodels.kernels.common.last_step_index` (on the CPU); returns
    ``output`` ``(T, N, H)`` (zeros at padded steps) and ``h_n`` ``(N, H)``, the state after
    each sequence's last real step. Saved for backward: ``a`` (for a double backward only),
    ``w_hh``, ``h0`` and the output (with recurrent dropout or zoneout, ``a`` for backward:
    it recomputes each step's ``h~_t`` before zoneout, ``csrc/diagonal_steps.cpp``).
    """

    @staticmethod
    def forward(a, weight_hh, h0, walk, lengths, last):
        relu = walk.cell.nonlinearity == "relu"
        masks = loop_inputs(walk.regularisation, h0)
        out, h_n = compiled.extension().diagonal_forward(
            a, weight_hh, h0, last, walk.reverse, relu, *masks
        )
        return out, h_n

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        a, weight_hh, h0, walk, lengths, last = inputs
        out, _ = output
        ctx.walk = walk
        ctx.set_materialize_grads(False)  # no (T, N, H) of zeros for an unused output
        ctx.save_for_backward(a, weight_hh, h0, lengths, last, out)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_out: Tensor | None, grad_h_n: Tensor | None):
        a, weight_hh, h0, lengths, last, out = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        walk = ctx.walk
        if needs_out_of_place(grad_out, grad_h_n, a, weight_hh):

            def forward(a, weight_hh, h0):  # the engine's walk, out of place under vjp
                return EngineBPTT.apply(walk, lengths, a, weight_hh, None, h0)[:2]

            grads = recompute_vjp(forward, (a, weight_hh, h0), (grad_out, grad_h_n), needs)
            return (*grads, None, None, None)
        relu = walk.cell.nonlinearity == "relu"
        masks = loop_inputs(walk.regularisation, h0)
        grads = compiled.extension().diagonal_backward(  # regularised: recomputes h~ from a
            out, weight_hh, h0, last, walk.reverse, relu, grad_out, grad_h_n, a, *masks
        )
        grads = (g if need else None for g, need in zip(grads, needs, strict=True))
        return (*grads, None, None, None)
