r"""The in-place form of the Elman definition: one layer, one direction, on any device.

:class:`~seqmodels.ElmanCell` is a definition on the engine (:mod:`seqmodels.kernels.engine`:
its ``step_forward`` and ``step_backward``). An Elman step is two ops (one ``addmm``, one
activation), so the engine's per-step bookkeeping and its fresh per-step tensors, stacked at
the end, cost it a large share of its training time on the CPU. This form writes every step
in place into one buffer and computes the activation's derivative for all steps at once
(time ``Recurrent(ElmanCell(...))`` against a subclass of ``ElmanCell``, which inherits
the definition but not this form and so runs on the engine). ``tests/test_engine.py`` holds it
to the definition: values and every gradient against the engine walking the cell's step.

Forward (all steps ``t = 1..T``; ``h_0`` given)::

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    h_t = act(z_t)                                    act = tanh or relu

Backward, given ``G_t = dL/dh_t`` from everything above the layer (its outputs) and
``dL/dh_T`` from the final state. The error term of step t is

.. math::
    \delta_t = \frac{\partial L}{\partial z_t}
             = \big(G_t + W_{hh}^\top \delta_{t+1}\big) \odot \mathrm{act}'(z_t),
    \qquad \delta_{T+1} = 0,

with :math:`\tanh'(z_t) = 1 - h_t^2` and :math:`\mathrm{relu}'(z_t) = [h_t > 0]`, both read
off the saved outputs. Once every :math:`\delta_t` is known, the gradients are sums over
time, each computed as ONE matrix multiply over the whole sequence:

.. math::
    \frac{\partial L}{\partial W_{ih}} = \sum_t \delta_t x_t^\top, \quad
    \frac{\partial L}{\partial W_{hh}} = \sum_t \delta_t h_{t-1}^\top, \quad
    \frac{\partial L}{\partial b_{ih}} = \frac{\partial L}{\partial b_{hh}} = \sum_t \delta_t,
    \quad \frac{\partial L}{\partial x_t} = W_{ih}^\top \delta_t, \quad
    \frac{\partial L}{\partial h_0} = W_{hh}^\top \delta_1.

Only the recurrence for :math:`\delta` is sequential. The code works on row-vector batches
(``h`` is ``(N, H)``), so ``W^T delta`` reads ``delta @ W``.

Padding (per-sequence ``lengths``): the forward pass runs every step for every sequence and
then zeroes the outputs at padded steps; a padded step's junk only ever feeds later padded
steps of the same row. In backward, ``act'`` is zeroed at padded steps, so their
:math:`\delta` is exactly zero and nothing flows through them; ``dL/dh_n`` enters at each
sequence's own last step. No per-step masking is needed in either direction.

Padded input steps are replaced by zeros first (a select, not a multiply), so NaN or inf
in padding can reach neither the values nor the gradients (``0 * nan`` would be ``nan``).

Direction: with ``reverse=True`` (and no padding) time is walked from ``T`` down to 1, so the
backward direction of a bidirectional layer needs no flipped copies of its input and output;
"the previous step" of ``t`` is then ``t + 1``. Padded batches are reversed per sequence by
the caller instead (:func:`seqmodels.core.reverse_padded`).

On the CPU (float32/float64, the extension built) the walk each way is compiled
(``csrc/elman_steps.cpp``): one ATen GEMM per step and one pass over the step's rows, where
the Python loop below dispatches two or three ops per step. That walk also takes recurrent
dropout's mask ``m`` and zoneout's ``d_t`` (:mod:`~seqmodels.kernels.regularisation`): the
step reads ``m h_{t-1}``, ``h_t = h~_t + d_t (h_{t-1} - h~_t)``, and backward passes
:math:`m \odot W_{hh}^\top \delta_t + d_t\, \partial L/\partial h_t` to the step before,
with :math:`\delta_t = (1 - d_t) \odot \partial L/\partial h_t \odot \mathrm{act}'(z_t)`
and :math:`\partial L / \partial W_{hh} = \sum_t \delta_t (m h_{t-1})^\top`. Elsewhere a
regularised call runs on the engine.

Under ``torch.func`` transforms and ``create_graph=True`` (double backward) the forward
runs the definition and backward is its ``torch.func.vjp``
(:func:`~seqmodels.kernels.engine.definition`).

Under ``torch.autocast`` the inputs and weights are cast to the autocast dtype first (as
``torch.nn.RNN`` runs in it), and the kernel runs with autocast off.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from seqmodels.cells.elman import ElmanCell
from seqmodels.kernels import compiled
from seqmodels.kernels.common import (
    backward_steps,
    final_states,
    in_order,
    in_place_applies,
    last_step_index,
    layer_grads,
    needs_out_of_place,
    projected_buffer,
    real_steps,
    recompute_vjp,
    zero_padding,
)
from seqmodels.kernels.engine import definition, engine_kernel
from seqmodels.kernels.regularisation import Regularisation, loop_inputs


class ElmanBPTT(torch.autograd.Function):
    """``(x, h0, W_ih, W_hh, b_ih, b_hh, cell, lengths, reverse, regularisation) ->
    (output, h_n)``.

    Shapes: ``x`` ``(T, N, I)``, ``h0`` ``(N, H)``, ``lengths`` ``(N,)`` int64 on the data's
    device or ``None``; returns ``output`` ``(T, N, H)`` (zeros at padded steps) and
    ``h_n`` ``(N, H)``, the state after each sequence's last real step. Biases may be
    ``None``. ``reverse=True`` runs from the last step to the first (``lengths`` must then
    be ``None``). ``regularisation`` (recurrent dropout, zoneout; compiled walk only) or
    ``None``. Returns also the compiled walk's buffer of each step's ``h~`` (one fractional
    zoneout ``d``), or ``None``. Saved for backward: ``x``, ``h0``, ``output``, the weights
    and that buffer.
    """

    @staticmethod
    def forward(
        x: Tensor,
        h0: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor | None,
        bias_hh: Tensor | None,
        cell: ElmanCell,
        lengths: Tensor | None,
        reverse: bool = False,
        regularisation: Regularisation | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        real = real_steps(lengths, x.shape[0])
        x = zero_padding(x, real)  # padding never reaches the maths
        bias = None if bias_ih is None else bias_ih + bias_hh
        ext = compiled.usable(x, h0, weight_ih, weight_hh)
        htilde = None
        if ext is None:
            out = _forward_inplace(x, h0, weight_ih, weight_hh, bias, cell.nonlinearity, reverse)
        else:
            out = projected_buffer(x, weight_ih, bias)  # (T, N, H): a, then h
            mask, keep = loop_inputs(regularisation, h0)
            htilde = torch.empty_like(out) if keeps_htilde(keep) else None
            relu = cell.nonlinearity == "relu"
            w_hh_t = weight_hh.t().contiguous()  # a row-major copy: the step GEMM runs faster
            h0 = h0.contiguous()
            ext.elman_forward(out, h0, w_hh_t, reverse, relu, mask, keep, htilde)
        return zero_padding(out, real), final_states(out, lengths, reverse), htilde

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, cell, lengths, reverse, reg = inputs
        out, _, htilde = output
        ctx.cell, ctx.nonlinearity = cell, cell.nonlinearity
        ctx.has_bias = bias_ih is not None
        ctx.reverse, ctx.regularisation = reverse, reg
        ctx.set_materialize_grads(False)
        if htilde is not None:
            ctx.mark_non_differentiable(htilde)
        saved = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, out, htilde)
        ctx.save_for_backward(*saved)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_out: Tensor | None, grad_h_n: Tensor | None, _grad_ht):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, out, htilde = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if needs_out_of_place(grad_out, grad_h_n, x, h0, weight_hh):

            def forward(x, h0, *weights):
                reg = ctx.regularisation
                return definition(ctx.cell, x, (h0,), weights, lengths, ctx.reverse, reg)

            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
            grads = recompute_vjp(forward, inputs, (grad_out, grad_h_n), needs)
            return (*grads, None, None, None, None)
        real = real_steps(lengths, x.shape[0])
        x = zero_padding(x, real)  # the same zeroed input the forward pass saw
        ext = compiled.usable(out, h0, weight_hh)
        if ext is None:
            delta = _deltas_inplace(ctx, out, weight_hh, lengths, real, grad_out, grad_h_n)
            grads = layer_grads(ctx, needs[:6], x, h0, out, weight_ih, weight_hh, delta, delta)
            return (*grads, None, None, None, None)
        mask, keep = loop_inputs(ctx.regularisation, out)
        if grad_out is not None and real is not None:
            grad_out = zero_padding(grad_out, real)
        delta, grad_h0, grad_w_hh = ext.elman_backward(
            out if htilde is None else htilde,
            out,
            h0.contiguous(),
            weight_hh.detach().contiguous(),
            grad_out,  # any strides: the loop reads it in place
            None if grad_h_n is None else grad_h_n.contiguous(),
            last_step_index(lengths, out.shape[0], out.shape[1], ctx.reverse),
            ctx.reverse,
            ctx.nonlinearity == "relu",
            mask,
            keep,
            needs[3],  # with recurrent dropout the walk adds dW_hh (it read m h_{t-1})
        )
        weight_needs = (needs[0], False, *needs[2:6])  # dL/dh0 came from the walk
        if grad_w_hh is not None:
            weight_needs = (*weight_needs[:3], False, *weight_needs[4:])
        grads = list(layer_grads(ctx, weight_needs, x, h0, out, weight_ih, weight_hh, delta, delta))
        grads[1] = grad_h0 if needs[1] else None
        if grad_w_hh is not None:
            grads[3] = grad_w_hh
        return (*grads, None, None, None, None)


# --- forward ---------------------------------------------------------------------------------


def keeps_htilde(keep: Tensor | None) -> bool:
    """True when the compiled walk keeps each step's ``h~`` for ``act'``: one fractional
    zoneout ``d`` at every step (eval's p, ``(1, N, H)``). Training's ``d`` is 0 or 1, and
    then ``act'`` reads the outputs."""
    return keep is not None and keep.shape[0] == 1


def _forward_inplace(x, h0, weight_ih, weight_hh, bias, nonlinearity, reverse) -> Tensor:
    # One GEMM for the input half of every step, written straight into the output buffer.
    out = projected_buffer(x, weight_ih, bias)  # (T, N, H)
    # The recurrence, in place: h_t = act(h_t + h_{t-1} @ W_hh^T).
    activation_ = torch.tanh_ if nonlinearity == "tanh" else torch.relu_
    w_hh_t = weight_hh.t().contiguous()  # a row-major copy: the step GEMM runs faster
    h_prev = h0
    for h_t in in_order(out.unbind(0), reverse):
        h_t.addmm_(h_prev, w_hh_t)
        activation_(h_t)
        h_prev = h_t
    return out


# --- backward --------------------------------------------------------------------------------


def _deltas_inplace(ctx, out, weight_hh, lengths, real, grad_out, grad_h_n) -> Tensor:
    """``delta_t = dL/dz_t`` for all steps, computed in place (see the module docstring)."""
    # delta starts as act'(z_t) for all steps at once; the loop turns it into delta_t.
    if ctx.nonlinearity == "tanh":
        # 1 - h_t^2 in one pass over the sequence (addcmul: input + value * out * out)
        delta = torch.addcmul(out.new_ones(()), out, out, value=-1.0)
    else:
        delta = (out > 0).to(out.dtype)  # [h_t > 0]
    if real is not None:
        delta.masked_fill_(~real, 0.0)  # padded steps pass nothing
    dh = out.new_empty(out.shape[1], out.shape[2])  # dL/dh of the current step, reused
    deltas = delta.unbind(0)
    for t, _ in backward_steps(delta, weight_hh, dh, grad_out, grad_h_n, lengths, ctx.reverse):
        deltas[t].mul_(dh)  # delta_t = (G_t + W_hh^T delta_{t+1}) * act'(z_t)
    return delta


def elman_cell_kernel(
    cell: ElmanCell,
    x: Tensor,
    state: Tensor,
    lengths: Tensor | None,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, Tensor]:
    """The kernel of :class:`~seqmodels.ElmanCell`: this form where it applies (no autocast,
    no ``torch.func`` transform, no forward-mode dual; with recurrent dropout or zoneout, the
    compiled walk only), else the engine."""
    tensors = (x, state, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if not in_place_applies(*tensors) or (
        regularisation is not None and compiled.usable(x, state, cell.weight_hh) is None
    ):
        return engine_kernel(cell, x, state, lengths, reverse, regularisation)
    return ElmanBPTT.apply(*tensors, cell, lengths, reverse, regularisation)[:2]  # (out, h_n)


elman_cell_kernel.takes_regularisation = True  # type: ignore[attr-defined]
