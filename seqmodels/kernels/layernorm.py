r"""The compiled form of the LayerNorm LSTM definition: its time walk, one C++ loop each way.

:class:`~seqmodels.LayerNormLSTMCell` is a definition on the engine
(:mod:`seqmodels.kernels.engine`), written only as its step. There each step's LayerNorms,
gates and derivative run as traced graphs, and their fixed cost per call, with the stacking
of every step's records, is most of a training step. The loops in ``csrc/layernorm_steps.cpp``
(built with the gated loops by :mod:`seqmodels.kernels.compiled`) do each step as one ATen
GEMM plus one pass over each row. To time it: ``seqmodels-bench cell=lnlstm`` (the engine row
runs this form; ``SEQMODELS_COMPILED=0`` runs the traced graphs). ``tests/test_layernorm_kernel.py``
holds it to the definition: values and every gradient.

Forward, from ``a_t = LN_ih(W_ih x_t) + b`` (all steps at once under autograd, as the engine
projects; ``(h_0, c_0)`` given)::

    r_t = h_{t-1} W_hh^T;  x_t = (r_t - mean(r_t)) * rstd(r_t)      # LN_hh's normalised input
    z_t = a_t + g_hh * x_t;  i, f, o = sigmoid(z_t);  g = tanh(z_t)
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(LN_c(c_t))

Backward, given :math:`G_t = \partial L / \partial h_t` from above the layer and the final
states' gradients at each sequence's last step: with :math:`\hat c_t` LN_c's normalised
:math:`c_t` and :math:`y_t = \gamma_c \hat c_t + \beta_c`,

.. math::
    \delta h_t &= G_t + W_{hh}^T \delta r_{t+1}, \qquad
    \delta y_t = \delta h_t \odot o \odot (1 - \tanh^2 y_t)\\
    \delta c_t &= \delta c_{t+1}^{\to} + \mathrm{LN}'(\gamma_c \odot \delta y_t), \qquad
    \delta c_{t}^{\to} = f \odot \delta c_t\\
    \delta z_t &= (\delta c_t\, g\, i (1 - i),\ \delta c_t\, c_{t-1} f (1 - f),\
        \delta c_t\, i (1 - g^2),\ \delta h_t \tanh(y_t)\, o (1 - o))\\
    \delta r_t &= \mathrm{LN}'(\gamma_{hh} \odot \delta z_t),

where :math:`\mathrm{LN}'(u) = \mathrm{rstd}\,(u - \bar u - \hat x\, \overline{u \hat x})` is
LayerNorm's input gradient. Then :math:`\partial L / \partial a_t = \delta z_t` (autograd
takes it through ``LN_ih``, ``W_ih``, ``b`` and ``x``), :math:`\partial L / \partial W_{hh} =
\sum_t \delta r_t^T h_{t-1}`, :math:`\partial L / \partial \gamma_{hh} = \sum_{t,n} \delta z_t
\hat x_t`, :math:`\partial L / \partial \gamma_c = \sum \delta y_t \hat c_t` and
:math:`\partial L / \partial \beta_c = \sum \delta y_t`.

Padding and direction as the engine: padded inputs are zeroed before the projection, outputs
are zero at padded steps and so are their gradients, the final states' gradients enter at each
sequence's own last step, and ``reverse=True`` (no padding) walks from the last step.

Recurrent dropout (``r_t`` reads ``m * h_{t-1}``) and zoneout (``h_t = d_t h_{t-1} + (1 - d_t)
h~_t``) run inside the compiled walk, with the masks the layer drew, as on the engine
(:mod:`~seqmodels.kernels.regularisation`). The compiled walk runs where it applies (CPU,
float32/float64, no autocast, no ``torch.func`` transform or forward-mode dual, the extension
built); everywhere else the cell runs on the engine. A double backward or batched gradient of
the compiled walk is the ``torch.func.vjp`` of the engine's own walk, the same maths as
:func:`~seqmodels.kernels.engine.definition`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from seqmodels.cells.layernorm import EPS, LayerNormLSTMCell
from seqmodels.kernels import compiled
from seqmodels.kernels.common import (
    in_place_applies,
    last_step_index,
    needs_out_of_place,
    real_steps,
    recompute_vjp,
    steps_per_chunk,
    zero_padding,
)
from seqmodels.kernels.engine import (
    EngineBPTT,
    Walk,
    _regularisation_inputs,
    _results,
    engine_kernel,
    step_parameter_names,
)
from seqmodels.kernels.regularisation import Regularisation

#: Bytes of ``dL/dr`` held at once in backward: ``dL/dW_hh`` is added every chunk of steps.
CHUNK_BYTES = 4 * 2**20


def layernorm_lstm_cell_kernel(
    cell: LayerNormLSTMCell,
    x: Tensor,
    state: tuple[Tensor, Tensor],
    lengths: Tensor | None,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """The kernel of :class:`~seqmodels.LayerNormLSTMCell`: the compiled walk where it
    applies, else the engine. Takes recurrent dropout's mask and zoneout's ``d``
    (:class:`~seqmodels.kernels.regularisation.Regularisation`) as the engine does."""
    h0, c0 = state
    params = (cell.ln_hh.weight, cell.ln_c.weight, cell.ln_c.bias)
    tensors = [x, h0, c0, cell.weight_ih, cell.weight_hh, *params]
    names = step_parameter_names(cell)
    if (
        (reverse and lengths is not None)  # the engine's error
        or x.shape[0] == 0
        or names != ("ln_hh.weight", "ln_c.weight", "ln_c.bias")
        or not in_place_applies(*tensors, cell.bias)
        or compiled.usable(*tensors) is None
    ):
        return engine_kernel(cell, x, state, lengths, reverse, regularisation)
    steps, batch = x.shape[0], x.shape[1]
    a = cell.project_input(zero_padding(x, real_steps(lengths, steps)))  # autograd's GEMM
    last = last_step_index(lengths, steps, batch, reverse)
    walk = Walk(cell, names, 2, True, reverse, regularisation)
    output, h_n, c_n = LayerNormLSTMWalk.apply(
        a, cell.weight_hh, h0, c0, *params, walk, lengths, last
    )
    return output, (h_n, c_n)


layernorm_lstm_cell_kernel.takes_regularisation = True  # type: ignore[attr-defined]


class LayerNormLSTMWalk(torch.autograd.Function):
    """``(a, W_hh, h0, c0, g_hh, g_c, b_c, walk, lengths, last) -> (output, h_n, c_n)``: the
    walk from the input projection ``a`` ``(T, N, 4H)`` (``LN_ih`` and the bias included),
    compiled; ``walk`` (:class:`~seqmodels.kernels.engine.Walk`) holds the cell, the direction
    and the regularisers' masks, as the engine's does.

    ``g_hh`` ``(4H,)`` is ``LN_hh``'s gain, ``g_c`` and ``b_c`` ``(H,)`` ``LN_c``'s; ``last``
    is :func:`~seqmodels.kernels.common.last_step_index` (on the CPU). Returns ``output``
    ``(T, N, H)`` (zeros at padded steps) and the states after each sequence's last real step.
    Saved for backward: ``a``, the weights, the per-step ``h`` and ``c``, ``LN_hh``'s normalised
    inputs ``(T, N, 4H)`` and three statistics per row and step.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, a, weight_hh, h0, c0, g_hh, g_c, b_c, walk, lengths, last):
        # zoneout's d in processing order: the compiled walk reads it by step processed
        masks = _regularisation_inputs(walk, a.dtype)
        out, cells, xhat, stats = _walk(a, weight_hh, h0, c0, g_hh, g_c, b_c, walk.reverse, masks)
        ctx.walk, ctx.masks, ctx.xhat_spent = walk, masks, False
        ctx.set_materialize_grads(False)  # no (T, N, H) of zeros for an unused output
        # The walk's own buffers (``out`` is also the output without padding) saved with the
        # inputs: through save_for_backward, an output held for backward makes no cycle.
        ctx.save_for_backward(
            a, weight_hh, h0, c0, g_hh, g_c, b_c, lengths, last, out, cells, xhat, stats
        )
        return _results((out, cells), lengths, walk.reverse)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_out, grad_h_n, grad_c_n):
        saved = ctx.saved_tensors
        a, weight_hh, h0, c0, g_hh, g_c, b_c, lengths, last = saved[:9]
        needs = ctx.needs_input_grad[:7]
        walk = ctx.walk
        if needs_out_of_place(grad_out, grad_h_n, grad_c_n, a, weight_hh):

            def forward(a, weight_hh, h0, c0, *params):  # the engine's walk, out of place
                return EngineBPTT.apply(walk, lengths, a, weight_hh, None, h0, c0, *params)[:3]

            inputs = (a, weight_hh, h0, c0, g_hh, g_c, b_c)
            grads = recompute_vjp(forward, inputs, (grad_out, grad_h_n, grad_c_n), needs)
            return (*grads, None, None, None)
        out, cells, xhat, stats = saved[9:]
        # dL/da is written over LN_hh's normalised inputs (xhat), step by step, as each is read
        # for the last time: training holds one (T, N, 4H) buffer less. A second backward
        # through the same graph (retain_graph=True) finds them spent and runs the forward walk
        # again for them (the same arithmetic, so the same gradients to the last bit).
        if ctx.xhat_spent:
            out, cells, xhat, stats = _walk(
                a, weight_hh, h0, c0, g_hh, g_c, b_c, walk.reverse, ctx.masks
            )
        steps, batch, width = a.shape
        if lengths is not None and grad_out is not None:
            grad_out = zero_padding(grad_out, real_steps(lengths, steps))
        ctx.xhat_spent = True
        chunk = max(2, steps_per_chunk(CHUNK_BYTES, steps, batch * width * a.element_size()))
        grads = compiled.extension().lnlstm_backward(
            a.contiguous(), xhat, stats, out, cells, h0.contiguous(), c0.contiguous(),
            weight_hh.contiguous(), g_hh.contiguous(), g_c.contiguous(), b_c.contiguous(),
            grad_out, _contiguous(grad_h_n), _contiguous(grad_c_n), last, walk.reverse, chunk,
            xhat, *ctx.masks,
        )  # fmt: skip
        grad_a, grad_w, grad_h0, grad_c0, grad_g_hh, grad_g_c, grad_b_c = grads
        ordered = (grad_a, grad_w, grad_h0, grad_c0, grad_g_hh, grad_g_c, grad_b_c)
        grads = (g if need else None for g, need in zip(ordered, needs, strict=True))
        return (*grads, None, None, None)


def _walk(a, weight_hh, h0, c0, g_hh, g_c, b_c, reverse, masks) -> list[Tensor]:
    """The compiled forward walk: ``(out, cells, xhat, stats)`` (``csrc/layernorm_steps.cpp``)."""
    tensors = (a, h0, c0, weight_hh.t(), g_hh, g_c, b_c)
    args = (*(t.contiguous() for t in tensors), EPS, reverse, *masks)
    return compiled.extension().lnlstm_forward(*args)


def _contiguous(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.contiguous()
