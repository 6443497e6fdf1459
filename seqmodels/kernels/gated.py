r"""Hand-written back-propagation through time for one LSTM or GRU layer in one direction.

Both follow the Elman kernel's plan (:mod:`seqmodels.kernels.elman`): the input half of
every step's gates is ONE GEMM before the loop; each step is one ``addmm`` with a row-major
``W_hh^T`` plus fused gate arithmetic written into preallocated buffers; backward walks time
once for the recurrent deltas, and every weight gradient is one whole-sequence GEMM after it.
Everything that does not depend on the recursion (gate derivatives, products of saved
activations) is computed for all steps at once, so the backward loop is short.

LSTM (gates i, f, g, o; :math:`\tilde c_t = \tanh c_t`), with :math:`\delta h_t` the total
gradient reaching :math:`h_t` (from the outputs and from step t+1) and
:math:`\delta c_{T+1} = 0`:

.. math::
    \begin{aligned}
    \delta o_t &= \delta h_t \odot \tilde c_t \odot o(1-o), &
    \delta c_t &= \delta c_{t+1} \odot f_{t+1} + \delta h_t \odot o \odot (1 - \tilde c_t^2),\\
    \delta i_t &= \delta c_t \odot g \odot i(1-i), &
    \delta f_t &= \delta c_t \odot c_{t-1} \odot f(1-f), \quad
    \delta g_t = \delta c_t \odot i \odot (1-g^2),\\
    \delta h_{t-1} &\mathrel{+}= W_{hh}^\top \delta\mathrm{gates}_t
    \end{aligned}

GRU (gates r, z, n; :math:`a^h_n = W_{hn} h_{t-1} + b_{hn}` saved from the forward pass):

.. math::
    \begin{aligned}
    \delta a_n &= \delta h_t \odot (1-z) \odot (1-n^2), &
    \delta a_z &= \delta h_t \odot (h_{t-1} - n) \odot z(1-z),\\
    \delta a_r &= \delta a_n \odot a^h_n \odot r(1-r), &
    \delta a^h_n &= \delta a_n \odot r,\\
    \delta h_{t-1} &\mathrel{+}= W_{hh}^\top [\delta a_r, \delta a_z, \delta a^h_n]
        + \delta h_t \odot z
    \end{aligned}

and :math:`\partial L/\partial W_{ih} = \sum_t [\delta a_r, \delta a_z, \delta a_n] x_t^\top`,
:math:`\partial L/\partial W_{hh} = \sum_t [\delta a_r, \delta a_z, \delta a^h_n] h_{t-1}^\top`.

The compiled LSTM backward (CPU) walks time in chunks of :data:`CHUNK_BYTES` of deltas and
runs the weight-gradient GEMMs of each chunk before the next, so the deltas never occupy a
whole ``(T, N, 4H)`` buffer; where it splits the batch into row blocks (one per thread),
each block runs its own GEMMs on its own deltas. The sums are the same, added in a
different order.

Padding: padded input steps are zeroed first; outputs and the gradient reaching them are
selected away at padded steps, and the final-state gradients enter at each sequence's own
last step, so nothing flows through padding. ``reverse=True`` (no padding) walks time
backwards natively. Under ``torch.func`` transforms or ``create_graph=True`` the same
maths runs out of place (:func:`~seqmodels.kernels.common.recompute_vjp`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from seqmodels.kernels import compiled, lstm_inference
from seqmodels.kernels.common import (
    add_rows_,
    any_wrapped,
    apply_with_autocast,
    backward_steps,
    final_states,
    in_order,
    last_step_index,
    last_steps,
    layer_grads,
    mul_previous_,
    needs_out_of_place,
    projected_buffer,
    real_steps,
    recompute_vjp,
    steps_per_chunk,
    sum_outer_previous,
    zero_padding,
)
from seqmodels.kernels.memory import fresh_buffer

# --- LSTM ------------------------------------------------------------------------------------


def _lstm_inplace(x, h0, c0, weight_ih, weight_hh, bias, reverse):
    """Fast forward: returns ``out (T,N,H)``, ``cells (T,N,H)``, activated ``gates (T,N,4H)``."""
    hidden = weight_hh.shape[1]
    out = x.new_empty(x.shape[0], x.shape[1], hidden)  # (T, N, H)
    cells = torch.empty_like(out)
    w_hh_t = weight_hh.t().contiguous()  # (H, 4H) row-major: the step GEMM runs faster
    ext = compiled.usable(x, h0, c0, w_hh_t)
    if ext is not None:  # the same loop, compiled; it adds the bias inside each step
        gates = projected_buffer(x, weight_ih, None)  # (T, N, 4H)
        h0, c0 = h0.contiguous(), c0.contiguous()
        packed = ext.pack_step_weight(w_hh_t, x.shape[1])  # None unless steps run on MKL
        ext.lstm_forward(gates, h0, c0, w_hh_t, bias, out, cells, reverse, packed)
        return out, cells, gates
    gates = projected_buffer(x, weight_ih, bias)  # (T, N, 4H), pre-activation input half
    # Per-step views made once (unbind), not sliced in every step: at small batch sizes the
    # cost of each op's dispatch is what the loop spends its time on.
    i, f, g, o = (part.unbind(0) for part in gates.chunk(4, -1))
    if_ = gates[..., : 2 * hidden].unbind(0)
    steps = zip(gates.unbind(0), if_, i, f, g, o, out.unbind(0), cells.unbind(0), strict=True)
    h, c = h0, c0
    for gates_t, if_t, i_t, f_t, g_t, o_t, h_t, c_t in in_order(list(steps), reverse):
        gates_t.addmm_(h, w_hh_t)
        if_t.sigmoid_()
        g_t.tanh_()
        o_t.sigmoid_()
        torch.mul(f_t, c, out=c_t).addcmul_(i_t, g_t)
        torch.tanh(c_t, out=h_t).mul_(o_t)
        h, c = h_t, c_t
    return out, cells, gates


def _lstm_functional(x, h0, c0, weight_ih, weight_hh, bias, reverse):
    """The same forward, out of place (batchable, differentiable)."""
    projected = torch.matmul(x, weight_ih.t())
    if bias is not None:
        projected = projected + bias
    h, c, outs, cells, acts = h0, c0, [], [], []
    for p_t in in_order(projected.unbind(0), reverse):
        i, f, g, o = (p_t + torch.matmul(h, weight_hh.t())).chunk(4, -1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        outs.append(h), cells.append(c), acts.append(torch.cat([i, f, g, o], -1))
    return tuple(torch.stack(in_order(s, reverse)) for s in (outs, cells, acts))


def _lstm_outputs(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse):
    real = real_steps(lengths, x.shape[0])
    x = zero_padding(x, real)
    bias = None if bias_ih is None else bias_ih + bias_hh
    run = _lstm_functional if any_wrapped(x, h0, c0, weight_ih, weight_hh) else _lstm_inplace
    out, cells, gates = run(x, h0, c0, weight_ih, weight_hh, bias, reverse)
    h_n, c_n = final_states(out, lengths, reverse), final_states(cells, lengths, reverse)
    return zero_padding(out, real), h_n, c_n, cells, gates


class LSTMBPTT(torch.autograd.Function):
    """``(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths, reverse) -> (output, h_n, c_n)``.

    Shapes: ``x`` ``(T, N, I)``, ``h0``/``c0`` ``(N, H)``; ``output`` ``(T, N, H)`` (zeros
    at padded steps), ``h_n``/``c_n`` ``(N, H)`` after each sequence's last real step.
    Saved for backward: ``x``, ``h0``, ``c0``, the outputs, cell states, activated gates
    and the weights.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse=False):
        out, h_n, c_n, cells, gates = _lstm_outputs(
            x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse
        )
        return out, h_n, c_n, cells, gates

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse = inputs
        out, _, _, cells, gates = output
        ctx.reverse = reverse
        ctx.has_bias = bias_ih is not None
        ctx.set_materialize_grads(False)  # no (T, N, 4H) of zeros for the unused outputs
        ctx.mark_non_differentiable(cells, gates)
        ctx.save_for_backward(
            x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, out, cells, gates
        )

    @staticmethod
    def backward(ctx, grad_out, grad_h_n, grad_c_n, _grad_cells, _grad_gates):
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, out, cells, gates = (
            ctx.saved_tensors
        )
        if needs_out_of_place(grad_out, grad_h_n, grad_c_n, x, h0, weight_hh):

            def forward(*tensors):
                return _lstm_outputs(*tensors, lengths, ctx.reverse)[:3]

            inputs = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
            grads = recompute_vjp(
                forward, inputs, (grad_out, grad_h_n, grad_c_n), ctx.needs_input_grad
            )
            return (*grads, None, None)
        real = real_steps(lengths, x.shape[0])
        ext = compiled.usable(out, cells, gates, c0, weight_hh)
        if ext is not None:  # compiled: the δ loop and the weight gradients chunk by chunk
            tensors = (x, h0, c0, weight_ih, weight_hh, out, cells, gates, lengths, real)
            grads = _lstm_chunked_grads(ext, ctx, tensors, grad_out, grad_h_n, grad_c_n)
            return (*grads, None, None)
        dgates, grad_c0 = _lstm_deltas(
            ctx.reverse,
            out,
            cells,
            gates,
            c0,
            weight_hh,
            lengths,
            real,
            grad_out,
            grad_h_n,
            grad_c_n,
        )
        n = ctx.needs_input_grad
        g = layer_grads(
            ctx,
            (n[0], n[1], n[3], n[4], n[5], n[6]),
            zero_padding(x, real),
            h0,
            out,
            weight_ih,
            weight_hh,
            dgates,
            dgates,
        )
        return g[0], g[1], grad_c0 if n[2] else None, *g[2:], None, None


def _lstm_deltas(
    reverse, out, cells, gates, c0, weight_hh, lengths, real, grad_out, grad_h_n, grad_c_n
):
    """``dL/d(gates pre-activation)`` for every step (T, N, 4H), and ``dL/dc_0``."""
    steps, batch, hidden = out.shape
    grad_out = zero_padding(grad_out, real) if grad_out is not None else None
    act = gates.view(steps, batch, 4, hidden)
    i, f, g, o = act.unbind(2)
    tanh_c = torch.tanh(cells)
    # Everything that does not depend on the recursion, for all steps at once, in place in
    # one buffer laid out like the gates: d(gate pre-activation)/d(c or h) per gate.
    factor = torch.addcmul(act, act, act, value=-1.0)  # x - x^2: sigma' for i, f, o
    factor[:, :, 0].mul_(g)  # i: dc * g * i(1-i)
    mul_previous_(factor[:, :, 1], cells, c0, reverse)  # f: dc * c_{t-1} * f(1-f)
    torch.addcmul(i, i * g, g, value=-1.0, out=factor[:, :, 2])  # g: dc * i(1-g^2)
    factor[:, :, 3].mul_(tanh_c)  # o: dh * tanh(c) * o(1-o)
    factor_c = torch.addcmul(o, o * tanh_c, tanh_c, value=-1.0)  # dc/dh: o(1-tanh^2 c)
    factor_o, factor_ifg = factor[:, :, 3], factor[:, :, :3]
    dgates = fresh_buffer(out, steps, batch, 4, hidden)
    c_rows = {} if grad_c_n is None else last_steps(lengths, steps, reverse)
    dh, dc = out.new_empty(batch, hidden), out.new_zeros(batch, hidden)
    dc_ = dc.unsqueeze(1)  # (N, 1, H): broadcasts over the i, f, g deltas
    views = [
        t.unbind(0) for t in (factor_o, factor_c, factor_ifg, f, dgates[:, :, 3], dgates[:, :, :3])
    ]
    for t, _ in backward_steps(dgates, weight_hh, dh, grad_out, grad_h_n, lengths, reverse):
        f_o, f_c, f_ifg, f_t, d_o, d_ifg = (view[t] for view in views)
        if t in c_rows:
            add_rows_(dc, c_rows[t], grad_c_n)
        torch.mul(dh, f_o, out=d_o)
        dc.addcmul_(dh, f_c)
        torch.mul(dc_, f_ifg, out=d_ifg)
        dc.mul_(f_t)  # dL/dc_{t-1}
    if real is not None:  # padded steps pass nothing (their deltas are exactly zero)
        dgates.masked_fill_(~real.unsqueeze(-1), 0.0)
    return dgates.view(steps, batch, 4 * hidden), dc


#: Bytes of gate deltas per chunk of the compiled LSTM backward: each row block's share of a
#: chunk's deltas goes into that chunk's weight-gradient GEMMs and is dropped, so no
#: (T, N, 4H) delta buffer is ever allocated (tens of MB at the benchmark's B and E,
#: page-faulted on every backward). 4 MB was the best size measured against 0.5-8 MB
#: (``seqmodels-bench cell=lstm``; docs/dev/performance.md, "The chunked backward").
CHUNK_BYTES = 4 << 20


def _lstm_chunked_grads(ext, ctx, tensors, grad_out, grad_h_n, grad_c_n):
    """The compiled LSTM backward: ``dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh``.

    ``ext.lstm_backward_chunk`` walks time one chunk of :data:`CHUNK_BYTES` of deltas at a
    time and adds that chunk's terms of every gradient (each row block its own, as BLAS
    GEMMs on the deltas it just wrote). The same sums as
    :func:`~seqmodels.kernels.common.layer_grads`, in a different order of addition.
    """
    x, h0, c0, weight_ih, weight_hh, out, cells, gates, lengths, real = tensors
    steps, batch, hidden = out.shape
    needs, reverse = ctx.needs_input_grad, ctx.reverse
    x = zero_padding(x, real).contiguous()
    grad_out = zero_padding(grad_out, real) if grad_out is not None else None
    grad_h_n, grad_c_n = (None if g is None else g.contiguous() for g in (grad_h_n, grad_c_n))
    last = last_step_index(lengths, steps, batch, reverse)
    size = steps_per_chunk(CHUNK_BYTES, steps, batch * 4 * hidden * out.element_size())
    deltas = out.new_empty(size * batch * 4 * hidden)  # scratch, reused by every chunk
    carry, dc = out.new_zeros(batch, hidden), out.new_zeros(batch, hidden)
    grad_x = x.new_empty(x.shape) if needs[0] else None
    grad_w_ih = weight_ih.new_zeros(weight_ih.shape) if needs[3] else None
    grad_w_hh = weight_hh.new_zeros(weight_hh.shape) if needs[4] else None
    grad_b = out.new_zeros(4 * hidden) if ctx.has_bias and (needs[5] or needs[6]) else None
    weight_hh = weight_hh.detach().contiguous()
    loop = (gates, cells, c0.contiguous(), weight_hh, grad_out, grad_h_n, grad_c_n)
    operands = (x, out, h0.contiguous(), weight_ih.detach().contiguous())
    packed = ext.pack_step_weight(weight_hh, batch)  # once for every chunk; None: no MKL steps
    starts = list(range(0, steps, size))
    for s in starts if reverse else starts[::-1]:  # the backward walk's order of chunks
        e = min(s + size, steps)
        ext.lstm_backward_chunk(
            *loop, last, reverse, s, e, deltas, carry, dc, *operands,
            grad_x, grad_w_ih, grad_w_hh, grad_b, packed,
        )  # fmt: skip
    grad_h0 = carry if needs[1] else None  # W_hh^T δ of the first step of the forward pass
    grad_c0 = dc if needs[2] else None
    grad_b_ih = grad_b if needs[5] else None
    grad_b_hh = grad_b if needs[6] else None  # one sum serves both biases
    return grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


# --- GRU -------------------------------------------------------------------------------------


def _gru_inplace(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, reverse):
    """Fast forward: ``out (T,N,H)``, activated ``gates (T,N,3H)`` (r, z, n), ``hidden_n``
    ``(T,N,H)`` = ``W_hn h_{t-1} + b_hn`` (the reset gate's operand, needed by backward)."""
    hidden = weight_hh.shape[1]
    out = x.new_empty(x.shape[0], x.shape[1], hidden)
    hidden_n = torch.empty_like(out)
    w_hh_t = weight_hh.t().contiguous()  # (H, 3H)
    ext = compiled.usable(x, h0, w_hh_t)
    if ext is not None:  # the same loop, compiled; it adds both biases inside each step
        gates = projected_buffer(x, weight_ih, None)  # (T, N, 3H)
        biases = (bias_ih, bias_hh)
        packed = ext.pack_step_weight(w_hh_t, x.shape[1], row_blocks=False)  # None: no MKL
        ext.gru_forward(gates, h0.contiguous(), w_hh_t, *biases, out, hidden_n, reverse, packed)
        return out, gates, hidden_n
    gates = projected_buffer(x, weight_ih, bias_ih)  # (T, N, 3H), input half
    gh = gates.new_empty(x.shape[1], 3 * hidden)  # the hidden half of one step
    h = h0
    for g, h_t, hn_t in zip(
        *(in_order(t.unbind(0), reverse) for t in (gates, out, hidden_n)), strict=True
    ):
        if bias_hh is None:
            torch.mm(h, w_hh_t, out=gh)
        else:
            torch.addmm(bias_hh, h, w_hh_t, out=gh)
        rz = g[:, : 2 * hidden]
        rz.add_(gh[:, : 2 * hidden]).sigmoid_()
        hn_t.copy_(gh[:, 2 * hidden :])
        n = g[:, 2 * hidden :]
        n.addcmul_(rz[:, :hidden], hn_t).tanh_()
        torch.sub(h, n, out=h_t).mul_(rz[:, hidden:]).add_(n)  # n + z * (h - n)
        h = h_t
    return out, gates, hidden_n


def _gru_functional(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, reverse):
    """The same forward, out of place (batchable, differentiable)."""
    projected = torch.matmul(x, weight_ih.t())
    if bias_ih is not None:
        projected = projected + bias_ih
    h, outs, acts, hns = h0, [], [], []
    for p_t in in_order(projected.unbind(0), reverse):
        gh = torch.matmul(h, weight_hh.t())
        if bias_hh is not None:
            gh = gh + bias_hh
        (p_r, p_z, p_n), (h_r, h_z, h_n) = p_t.chunk(3, -1), gh.chunk(3, -1)
        r, z = torch.sigmoid(p_r + h_r), torch.sigmoid(p_z + h_z)
        n = torch.tanh(p_n + r * h_n)
        h = n + z * (h - n)
        outs.append(h), acts.append(torch.cat([r, z, n], -1)), hns.append(h_n)
    return tuple(torch.stack(in_order(s, reverse)) for s in (outs, acts, hns))


def _gru_outputs(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse):
    real = real_steps(lengths, x.shape[0])
    x = zero_padding(x, real)
    run = _gru_functional if any_wrapped(x, h0, weight_ih, weight_hh) else _gru_inplace
    out, gates, hidden_n = run(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, reverse)
    return zero_padding(out, real), final_states(out, lengths, reverse), gates, hidden_n


class GRUBPTT(torch.autograd.Function):
    """``(x, h0, W_ih, W_hh, b_ih, b_hh, lengths, reverse) -> (output, h_n)``.

    Shapes as :class:`LSTMBPTT` without the cell state. Saved for backward: ``x``, ``h0``,
    the outputs, activated gates, ``W_hn h_{t-1} + b_hn`` and the weights.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse=False):
        return _gru_outputs(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse)

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse = inputs
        out, _, gates, hidden_n = output
        ctx.reverse = reverse
        ctx.has_bias = bias_ih is not None
        ctx.set_materialize_grads(False)  # no (T, N, 3H) of zeros for the unused outputs
        ctx.mark_non_differentiable(gates, hidden_n)
        ctx.save_for_backward(
            x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, out, gates, hidden_n
        )

    @staticmethod
    def backward(ctx, grad_out, grad_h_n, _grad_gates, _grad_hidden_n):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, out, gates, hidden_n = (
            ctx.saved_tensors
        )
        n = ctx.needs_input_grad
        if needs_out_of_place(grad_out, grad_h_n, x, h0, weight_hh):

            def forward(*tensors):
                return _gru_outputs(*tensors, lengths, ctx.reverse)[:2]

            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
            return (*recompute_vjp(forward, inputs, (grad_out, grad_h_n), n), None, None)
        real = real_steps(lengths, x.shape[0])
        d_input, d_hidden_n, dh_first = _gru_deltas(
            ctx.reverse, out, gates, hidden_n, h0, weight_hh, lengths, real, grad_out, grad_h_n
        )
        # The input half's gradients; the hidden half's r and z deltas are the input half's,
        # its n deltas are d_hidden_n, so its gradients come by parts (_gru_hidden_grads).
        input_needs = (n[0], False, n[2], False, n[4], False)
        x = zero_padding(x, real)
        grads = list(layer_grads(ctx, input_needs, x, h0, out, weight_ih, weight_hh, d_input, None))
        hidden = _gru_hidden_grads(ctx, n, h0, out, weight_hh, d_input, d_hidden_n, grads[4])
        grads[1], grads[3], grads[5] = hidden
        if n[1]:  # h_0 also reaches h_1 directly: h_1 = n + z * (h_0 - n)
            z_first = gates[-1 if ctx.reverse else 0].chunk(3, -1)[1]
            grads[1] = grads[1].addcmul_(dh_first, z_first)
        return (*grads, None, None)


def _gru_hidden_grads(ctx, needs, h0, out, weight_hh, d_input, d_hidden_n, grad_b_ih):
    """``dh_0`` (before its direct path through z), ``dW_hh``, ``db_hh`` from the hidden
    half's deltas, given as parts: r and z (``d_input``'s) and n (``d_hidden_n``)."""
    two = 2 * d_hidden_n.shape[-1]
    d_rz = d_input[..., :two]  # (T, N, 2H), a view
    first = -1 if ctx.reverse else 0
    grad_h0 = grad_w_hh = grad_b_hh = None
    if needs[1]:
        grad_h0 = torch.matmul(d_rz[first], weight_hh[:two])
        grad_h0 = grad_h0.addmm_(d_hidden_n[first], weight_hh[two:])
    if needs[3]:
        parts = (sum_outer_previous(d, out, h0, ctx.reverse) for d in (d_rz, d_hidden_n))
        grad_w_hh = torch.cat(tuple(parts))
    if ctx.has_bias and needs[5]:
        rz = grad_b_ih[:two] if grad_b_ih is not None else d_rz.sum((0, 1))
        grad_b_hh = torch.cat((rz, d_hidden_n.sum((0, 1))))
    return grad_h0, grad_w_hh, grad_b_hh


def _previous_minus(out: Tensor, h0: Tensor, n: Tensor, reverse: bool) -> Tensor:
    """``h_{t-1} - n_t`` for every step, without a shifted copy of the states."""
    diff = torch.neg(n)
    diff_states = diff  # the steps whose previous state is a real output, then h_0's step
    if diff.shape[0] > 1:
        if reverse:
            diff_states[:-1].add_(out[1:])
        else:
            diff_states[1:].add_(out[:-1])
    diff[-1 if reverse else 0].add_(h0)
    return diff


def _gru_deltas(reverse, out, gates, hidden_n, h0, weight_hh, lengths, real, grad_out, grad_h_n):
    """Deltas of the input half (T, N, 3H) of the gates and of the hidden half's n part
    (T, N, H; its r and z deltas are the input half's), and dL/dh of the first step
    processed (before h_0's direct path through ``z``)."""
    steps, batch, hidden = out.shape
    grad_out = zero_padding(grad_out, real) if grad_out is not None else None
    ext = compiled.usable(out, gates, hidden_n, h0, weight_hh)
    if ext is not None:  # the same recursion, compiled (one fused pass per step)
        weight_hh = weight_hh.detach().contiguous()
        # Its r, z rows and n rows, each packed once for MKL's step GEMMs (None: no MKL).
        packed = [
            ext.pack_step_weight(w, batch, row_blocks=False)
            for w in weight_hh.split([2 * hidden, hidden])
        ]
        d_input, d_hidden_n, dh = ext.gru_backward(
            gates,
            hidden_n,
            out,
            h0.contiguous(),
            weight_hh,
            grad_out,  # any strides: the loop reads it in place
            None if grad_h_n is None else grad_h_n.contiguous(),
            last_step_index(lengths, steps, batch, reverse),
            reverse,
            fresh_buffer(gates, *gates.shape),  # d_input, (T, N, 3H)
            *packed,
        )
        if real is not None:
            d_input.masked_fill_(~real, 0.0)
            d_hidden_n.masked_fill_(~real, 0.0)
        return d_input, d_hidden_n, dh
    r, z, n = gates.chunk(3, -1)
    # Everything that does not depend on the recursion, for all steps at once.
    factor_n = (1 - z) * (1 - n * n)  # d a_n / d h_t
    factor_z = torch.addcmul(z, z, z, value=-1.0)  # z(1-z)
    factor_z.mul_(_previous_minus(out, h0, n, reverse))  # d a_z / d h_t: (h_{t-1} - n) z(1-z)
    factor_r = hidden_n * r * (1 - r)  # d a_r / d a_n
    d_input = fresh_buffer(out, steps, batch, 3, hidden)
    d_hidden = fresh_buffer(out, steps, batch, 3, hidden)
    dh, dh_later = out.new_empty(batch, hidden), out.new_zeros(batch, hidden)
    for t, later in backward_steps(d_hidden, weight_hh, dh, grad_out, grad_h_n, lengths, reverse):
        if later is not None:  # h_t also reaches h_{t+1} directly, through z_{t+1}
            dh.addcmul_(dh_later, z[later])
        d_n = torch.mul(dh, factor_n[t], out=d_input[t, :, 2])
        torch.mul(dh, factor_z[t], out=d_input[t, :, 1])
        torch.mul(d_n, factor_r[t], out=d_input[t, :, 0])
        d_hidden[t, :, :2].copy_(d_input[t, :, :2])
        torch.mul(d_n, r[t], out=d_hidden[t, :, 2])
        dh_later.copy_(dh)
    if real is not None:  # padded steps pass nothing (their deltas are exactly zero)
        d_input.masked_fill_(~real.unsqueeze(-1), 0.0)
        d_hidden.masked_fill_(~real.unsqueeze(-1), 0.0)
    # dh: of the first step processed; of the hidden half, only its n deltas (r, z: d_input's)
    return d_input.view(steps, batch, 3 * hidden), d_hidden[:, :, 2], dh


# --- entry points ----------------------------------------------------------------------------


def lstm_bptt(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths=None, reverse=False):
    """One LSTM layer, one direction: ``(output, h_n, c_n)``. See :class:`LSTMBPTT`."""
    tensors = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    return apply_with_autocast(_lstm_apply, tensors, lengths, reverse)[:3]


def _lstm_apply(*args):
    """No gradient wanted: the chunked forward that saves nothing; else the Function."""
    if lstm_inference.applies(args[:7]):
        return lstm_inference.lstm_inference(*args)
    return LSTMBPTT.apply(*args)


def gru_bptt(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths=None, reverse=False):
    """One GRU layer, one direction: ``(output, h_n)``. See :class:`GRUBPTT`."""
    tensors = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    return apply_with_autocast(GRUBPTT.apply, tensors, lengths, reverse)[:2]


def lstm_cell_kernel(cell, x: Tensor, state, lengths: Tensor | None, reverse: bool):
    """The kernel of :class:`~seqmodels.LSTMCell`."""
    h0, c0 = state
    weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    out, h_n, c_n = lstm_bptt(x, h0, c0, *weights, lengths, reverse)
    return out, (h_n, c_n)


def gru_cell_kernel(cell, x: Tensor, state: Tensor, lengths: Tensor | None, reverse: bool):
    """The kernel of :class:`~seqmodels.GRUCell`."""
    weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    return gru_bptt(x, state, *weights, lengths, reverse)
