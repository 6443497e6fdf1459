r"""Hand-written back-propagation through time for one Elman layer in one direction.

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

Two implementations of the same maths, chosen per call:

* the fast path (plain tensors, first derivatives): one preallocated buffer, in-place
  ``addmm_``/activation per step, the delta recurrence in place;
* the functional path (out-of-place ops only): used when a tensor is wrapped by a
  ``torch.func`` transform (``vmap``, ``grad``, ``autograd.grad(..., is_grads_batched=True)``,
  ``jacobian(..., vectorize=True)``) or when backward itself is differentiated
  (``create_graph=True``: double backward, ``gradgradcheck``). Every op in it is
  differentiable and batchable, so ``generate_vmap_rule`` and second derivatives just work.

Under ``torch.autocast`` the inputs and weights are cast to the autocast dtype first (as
``torch.nn.RNN`` runs in it), and the kernel runs with autocast off.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from seqmodels.core.padding import length_mask
from seqmodels.kernels.common import (
    any_wrapped,
    apply_with_autocast,
    in_order,
    sum_outer,
    sum_outer_previous,
)


class ElmanBPTT(torch.autograd.Function):
    """``(x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity, lengths, reverse) -> (output, h_n)``.

    Shapes: ``x`` ``(T, N, I)``, ``h0`` ``(N, H)``, ``lengths`` ``(N,)`` int64 on the data's
    device or ``None``; returns ``output`` ``(T, N, H)`` (zeros at padded steps) and
    ``h_n`` ``(N, H)``, the state after each sequence's last real step. Biases may be
    ``None``. ``reverse=True`` runs from the last step to the first (``lengths`` must then
    be ``None``). Saved for backward: ``x``, ``h0``, ``output`` and the weights; nothing
    else.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        x: Tensor,
        h0: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor | None,
        bias_hh: Tensor | None,
        nonlinearity: str,
        lengths: Tensor | None,
        reverse: bool = False,
    ) -> tuple[Tensor, Tensor]:
        if reverse and lengths is not None:
            raise ValueError("reverse=True needs lengths=None; reverse padded batches per sequence")
        real = None if lengths is None else length_mask(lengths, x.shape[0], time_major=True)
        if real is not None:
            x = torch.where(real.unsqueeze(-1), x, 0.0)  # padding never reaches the maths
        bias = None if bias_ih is None else bias_ih + bias_hh
        if any_wrapped(x, h0, weight_ih, weight_hh, bias):
            out = _forward_functional(x, h0, weight_ih, weight_hh, bias, nonlinearity, reverse)
        else:
            out = _forward_inplace(x, h0, weight_ih, weight_hh, bias, nonlinearity, reverse)
        if real is None:
            return out, out[0 if reverse else -1].clone()
        out = torch.where(real.unsqueeze(-1), out, 0.0)
        h_n = out[lengths - 1, torch.arange(x.shape[1], device=out.device)]  # (N, H)
        return out, h_n

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        x, h0, weight_ih, weight_hh, bias_ih, _, nonlinearity, lengths, reverse = inputs
        out, _ = output
        ctx.nonlinearity = nonlinearity
        ctx.has_bias = bias_ih is not None
        ctx.reverse = reverse
        ctx.save_for_backward(x, h0, out, weight_ih, weight_hh, lengths)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_out: Tensor | None, grad_h_n: Tensor | None):
        x, h0, out, weight_ih, weight_hh, lengths = ctx.saved_tensors
        if lengths is not None:  # the same zeroed input the forward pass saw
            real = length_mask(lengths, x.shape[0], time_major=True).unsqueeze(-1)
            x = torch.where(real, x, 0.0)
        saved = (x, h0, out, weight_ih, weight_hh, lengths)
        # Differentiating backward (create_graph=True) or running under a torch.func
        # transform needs out-of-place ops; everything else takes the in-place fast path.
        if torch.is_grad_enabled() or any_wrapped(grad_out, grad_h_n, *saved):
            delta = _deltas_functional(ctx, saved, grad_out, grad_h_n)
        else:
            delta = _deltas_inplace(ctx, saved, grad_out, grad_h_n)
        return _parameter_grads(ctx, saved, delta)


# --- forward ---------------------------------------------------------------------------------


def _forward_inplace(x, h0, weight_ih, weight_hh, bias, nonlinearity, reverse) -> Tensor:
    steps, batch, features = x.shape
    hidden = weight_hh.shape[0]
    x = x.contiguous()
    # One GEMM for the input half of every step, written straight into the output buffer.
    out = x.new_empty(steps, batch, hidden)  # (T, N, H)
    x2d, out2d = x.view(steps * batch, features), out.view(steps * batch, hidden)
    if bias is None:
        torch.mm(x2d, weight_ih.t(), out=out2d)
    else:
        torch.addmm(bias, x2d, weight_ih.t(), out=out2d)
    # The recurrence, in place: h_t = act(h_t + h_{t-1} @ W_hh^T).
    activation_ = torch.tanh_ if nonlinearity == "tanh" else torch.relu_
    w_hh_t = weight_hh.t().contiguous()  # a row-major copy: the step GEMM runs faster
    h_prev = h0
    for h_t in in_order(out.unbind(0), reverse):
        h_t.addmm_(h_prev, w_hh_t)
        activation_(h_t)
        h_prev = h_t
    return out


def _forward_functional(x, h0, weight_ih, weight_hh, bias, nonlinearity, reverse) -> Tensor:
    projected = torch.matmul(x, weight_ih.t())  # (T, N, H)
    if bias is not None:
        projected = projected + bias
    activation = torch.tanh if nonlinearity == "tanh" else torch.relu
    h, states = h0, []
    for p_t in in_order(projected.unbind(0), reverse):
        h = activation(p_t + torch.matmul(h, weight_hh.t()))
        states.append(h)
    return torch.stack(in_order(tuple(states), reverse))  # time order


# --- backward --------------------------------------------------------------------------------


def _activation_grad(out: Tensor, nonlinearity: str, lengths: Tensor | None) -> Tensor:
    """``act'(z_t)`` for all steps at once, zero at padded steps (they pass nothing back)."""
    if nonlinearity == "tanh":
        grad = 1 - out * out
    else:
        grad = (out > 0).to(out.dtype)  # [h_t > 0]
    if lengths is not None:
        real = length_mask(lengths, out.shape[0], time_major=True).unsqueeze(-1)
        grad = torch.where(real, grad, 0.0)
    return grad


def _last_steps(lengths: Tensor | None, steps: int, reverse: bool) -> dict[int, Tensor | None]:
    """Processing-order index of each sequence's last real step -> its rows (None: all)."""
    if lengths is None:
        return {steps - 1: None}
    return {
        last: torch.nonzero(lengths - 1 == last).flatten()
        for last in torch.unique(lengths - 1).tolist()
    }


def _deltas_inplace(ctx, saved, grad_out: Tensor | None, grad_h_n: Tensor | None) -> Tensor:
    """``delta_t = dL/dz_t`` for all steps, computed in place (see the module docstring)."""
    _, _, out, _, weight_hh, lengths = saved
    steps, batch, hidden = out.shape
    reverse = ctx.reverse
    if ctx.nonlinearity == "tanh":
        # 1 - h_t^2 in one pass over the sequence (addcmul: input + value * out * out)
        delta = torch.addcmul(out.new_ones(()), out, out, value=-1.0)
    else:
        delta = (out > 0).to(out.dtype)
    if lengths is not None:
        real = length_mask(lengths, steps, time_major=True).unsqueeze(-1)
        delta.masked_fill_(~real, 0.0)
    final_grad = {} if grad_h_n is None else _last_steps(lengths, steps, reverse)
    grads = None if grad_out is None else in_order(grad_out.unbind(0), reverse)
    deltas = in_order(delta.unbind(0), reverse)
    tmp = out.new_empty(batch, hidden)  # dL/dh of the current step, reused every step
    for k in range(steps - 1, -1, -1):
        # tmp = G_k + delta_{k+1} @ W_hh
        if k == steps - 1:
            if grads is not None:
                tmp.copy_(grads[k])
            else:
                tmp.zero_()
        elif grads is not None:
            torch.addmm(grads[k], deltas[k + 1], weight_hh, out=tmp)
        else:
            torch.mm(deltas[k + 1], weight_hh, out=tmp)
        if k in final_grad:
            rows = final_grad[k]
            if rows is None:
                tmp.add_(grad_h_n)
            else:
                tmp.index_add_(0, rows, grad_h_n.index_select(0, rows))
        deltas[k].mul_(tmp)  # delta_k = (G_k + W_hh^T delta_{k+1}) * act'(z_k)
    return delta


def _deltas_functional(ctx, saved, grad_out: Tensor | None, grad_h_n: Tensor | None) -> Tensor:
    """The same deltas as :func:`_deltas_inplace`, out of place (differentiable, batchable)."""
    _, _, out, _, weight_hh, lengths = saved
    steps, reverse = out.shape[0], ctx.reverse
    act_grad = in_order(_activation_grad(out, ctx.nonlinearity, lengths).unbind(0), reverse)
    if grad_out is None:
        grad_out = torch.zeros_like(out)
    if grad_h_n is not None:  # dL/dh_n joins G at each sequence's own last step
        if lengths is None:
            is_last = torch.zeros(steps, 1, 1, dtype=torch.bool, device=out.device)
            is_last[0 if reverse else -1] = True
        else:
            t = torch.arange(steps, device=out.device).unsqueeze(1)
            is_last = (t == lengths.unsqueeze(0) - 1).unsqueeze(-1)  # (T, N, 1)
        grad_out = grad_out + torch.where(is_last, grad_h_n.unsqueeze(0), 0.0)
    grads = in_order(grad_out.unbind(0), reverse)
    deltas: list[Tensor] = []
    for k in range(steps - 1, -1, -1):
        g = grads[k] if not deltas else grads[k] + torch.matmul(deltas[-1], weight_hh)
        deltas.append(g * act_grad[k])
    deltas.reverse()  # processing order
    return torch.stack(in_order(tuple(deltas), reverse))  # time order


def _parameter_grads(ctx, saved, delta: Tensor) -> tuple:
    """Whole-sequence GEMMs from the deltas: dx, dh0, dW_ih, dW_hh, db (module docstring)."""
    x, h0, out, weight_ih, weight_hh, _ = saved
    needs, reverse = ctx.needs_input_grad, ctx.reverse
    first = 0 if not reverse else -1  # the step processed first follows h_0
    grad_x = grad_h0 = grad_w_ih = grad_w_hh = grad_b = None
    if needs[0]:
        grad_x = torch.matmul(delta, weight_ih)  # (T, N, I)
    if needs[1]:
        grad_h0 = torch.matmul(delta[first], weight_hh)  # (N, H)
    if needs[2]:
        grad_w_ih = sum_outer(delta, x)
    if needs[3]:
        grad_w_hh = sum_outer_previous(delta, out, h0, reverse)
    if ctx.has_bias and (needs[4] or needs[5]):
        grad_b = delta.sum((0, 1))
    return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b, grad_b, None, None, None


def elman_cell_kernel(
    cell, x: Tensor, state: Tensor, lengths: Tensor | None, reverse: bool
) -> tuple[Tensor, Tensor]:
    """The kernel of :class:`~seqmodels.ElmanCell`: :func:`elman_bptt` over its parameters."""
    weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    return elman_bptt(x, state, *weights, cell.nonlinearity, lengths, reverse)


def elman_bptt(
    x: Tensor,
    h0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None,
    bias_hh: Tensor | None,
    nonlinearity: str = "tanh",
    lengths: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """One Elman layer, one direction, with the hand-written backward. See :class:`ElmanBPTT`.

    Under ``torch.autocast`` the floating-point arguments are cast to the autocast dtype
    (as ``torch.nn.RNN`` computes in it) and the kernel runs with autocast off.
    """
    tensors = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    return apply_with_autocast(ElmanBPTT.apply, tensors, nonlinearity, lengths, reverse)
