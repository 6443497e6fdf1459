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

Direction: with ``reverse=True`` (and no padding) time is walked from ``T`` down to 1, so the
backward direction of a bidirectional layer needs no flipped copies of its input and output;
"the previous step" of ``t`` is then ``t + 1``. Padded batches are reversed per sequence by
the caller instead (:func:`seqmodels.layers.sequence.reverse_padded`).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx


class ElmanBPTT(torch.autograd.Function):
    """``(x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity, lengths, reverse) -> (output, h_n)``.

    Shapes: ``x`` ``(T, N, I)``, ``h0`` ``(N, H)``, ``lengths`` ``(N,)`` int64 on the data's
    device or ``None``; returns ``output`` ``(T, N, H)`` (zeros at padded steps) and
    ``h_n`` ``(N, H)``, the state after each sequence's last real step. Biases may be
    ``None``. ``reverse=True`` runs from the last step to the first (``lengths`` must then
    be ``None``). Saved for backward: ``x``, ``h0``, ``output`` and the weights; nothing
    else.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
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
        steps, batch, features = x.shape
        hidden = weight_hh.shape[0]
        x = x.contiguous()
        # One GEMM for the input half of every step, written straight into the output buffer.
        out = x.new_empty(steps, batch, hidden)  # (T, N, H)
        x2d, out2d = x.view(steps * batch, features), out.view(steps * batch, hidden)
        if bias_ih is None:
            torch.mm(x2d, weight_ih.t(), out=out2d)
        else:
            torch.addmm(bias_ih + bias_hh, x2d, weight_ih.t(), out=out2d)
        # The recurrence, in place: h_t = act(h_t + h_{t-1} @ W_hh^T).
        activation_ = torch.tanh_ if nonlinearity == "tanh" else torch.relu_
        w_hh_t = weight_hh.t().contiguous()  # a row-major copy: the step GEMM runs faster
        h_prev = h0
        for h_t in _in_order(out.unbind(0), reverse):
            h_t.addmm_(h_prev, w_hh_t)
            activation_(h_t)
            h_prev = h_t
        if lengths is None:
            h_n = h_prev.clone()
        else:
            real = _real_steps(lengths, steps)  # (T, N, 1)
            out.masked_fill_(~real, 0.0)
            h_n = out[lengths - 1, torch.arange(batch, device=out.device)]  # (N, H)
        ctx.nonlinearity = nonlinearity
        ctx.has_bias = bias_ih is not None
        ctx.reverse = reverse
        ctx.save_for_backward(x, h0, out, weight_ih, weight_hh, lengths)
        return out, h_n

    @staticmethod
    def backward(ctx: FunctionCtx, grad_out: Tensor | None, grad_h_n: Tensor | None):
        # With create_graph=True autograd runs backward in grad mode to differentiate it
        # again. This backward is hand-written, not differentiable: say so instead of
        # returning gradients that silently look constant to a second derivative.
        if torch.is_grad_enabled():
            raise RuntimeError(
                "ElmanRNN backend='bptt' does not support double backward "
                "(create_graph=True, e.g. gradient penalties or Hessian-vector products); "
                "use backend='autograd' for that"
            )
        return _backward(ctx, grad_out, grad_h_n)


def _in_order(steps: tuple[Tensor, ...], reverse: bool) -> tuple[Tensor, ...]:
    """Time slices in processing order."""
    return steps[::-1] if reverse else steps


def _backward(ctx: FunctionCtx, grad_out: Tensor | None, grad_h_n: Tensor | None) -> tuple:
    """The backward pass of :class:`ElmanBPTT` (see the module docstring for the maths)."""
    x, h0, out, weight_ih, weight_hh, lengths = ctx.saved_tensors
    steps, batch, hidden = out.shape
    needs, reverse = ctx.needs_input_grad, ctx.reverse

    # delta starts as act'(z_t) for all steps at once; the loop turns it into delta_t.
    if ctx.nonlinearity == "tanh":
        # 1 - h_t^2 in one pass over the sequence (addcmul: input + value * out * out)
        delta = torch.addcmul(out.new_ones(()), out, out, value=-1.0)
    else:
        delta = (out > 0).to(out.dtype)  # [h_t > 0]
    if lengths is not None:
        delta.masked_fill_(~_real_steps(lengths, steps), 0.0)  # padded steps pass nothing

    # dL/dh_n enters at each sequence's own last step (k indexes processing order).
    final_grad: dict[int, Tensor | None] = {}
    if grad_h_n is not None:
        if lengths is None:
            final_grad[steps - 1] = None  # all rows
        else:
            for last in torch.unique(lengths - 1).tolist():
                final_grad[last] = torch.nonzero(lengths - 1 == last).flatten()

    grads = None if grad_out is None else _in_order(grad_out.unbind(0), reverse)
    deltas = _in_order(delta.unbind(0), reverse)
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

    # Whole-sequence GEMMs for everything else.
    delta2d = delta.view(steps * batch, hidden)  # (T*N, H)
    grad_x = grad_h0 = grad_w_ih = grad_w_hh = grad_b = None
    if needs[0]:
        grad_x = delta2d.mm(weight_ih).view(steps, batch, -1)
    if needs[1]:
        grad_h0 = deltas[0].mm(weight_hh)
    if needs[2]:
        grad_w_ih = delta2d.t().mm(x.view(steps * batch, -1))
    if needs[3]:
        grad_w_hh = deltas[0].t().mm(h0)  # the first step processed follows h_0
        if steps > 1:
            # every other step pairs with the state processed just before it
            current, previous = (delta[:-1], out[1:]) if reverse else (delta[1:], out[:-1])
            rows = (steps - 1) * batch
            grad_w_hh.addmm_(current.reshape(rows, hidden).t(), previous.reshape(rows, hidden))
    if ctx.has_bias and (needs[4] or needs[5]):
        grad_b = delta2d.sum(0)
    return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b, grad_b, None, None, None


def _real_steps(lengths: Tensor, steps: int) -> Tensor:
    """Boolean ``(T, N, 1)``: True where step t is a real step of sequence n."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    return (t < lengths.unsqueeze(0)).unsqueeze(-1)


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
    """One Elman layer, one direction, with the hand-written backward. See :class:`ElmanBPTT`."""
    return ElmanBPTT.apply(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity, lengths, reverse
    )
