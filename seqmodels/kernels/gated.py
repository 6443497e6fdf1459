r"""The compiled forms of the LSTM and GRU definitions: CPU loops in ``csrc/gated_steps.cpp``.

:class:`~seqmodels.LSTMCell` and :class:`~seqmodels.GRUCell` are definitions on the engine
(:mod:`seqmodels.kernels.engine`): their maths is their ``step_forward`` and
``step_backward``. On the CPU a Python walk pays torch's dispatch cost on every op of every
step (an LSTM step is ~10 ops forward and ~15 backward), and trails ``nn.LSTM``'s fused
oneDNN primitive several times over (``seqmodels-bench cell=lstm`` with
``SEQMODELS_COMPILED=0``). These loops do one GEMM per step plus one fused pass over the
gates. They are held to the definitions by ``tests/test_compiled_kernels.py``: values and
every gradient against the engine walking the cells' own steps.

The maths, for the reader of the C++ (LSTM gates i, f, g, o; :math:`\tilde c_t = \tanh c_t`;
:math:`\delta h_t` the total gradient reaching :math:`h_t`, :math:`\delta c_{T+1} = 0`):

.. math::
    \begin{aligned}
    \delta o_t &= \delta h_t \odot \tilde c_t \odot o(1-o), &
    \delta c_t &= \delta c_{t+1} \odot f_{t+1} + \delta h_t \odot o \odot (1 - \tilde c_t^2),\\
    \delta i_t &= \delta c_t \odot g \odot i(1-i), &
    \delta f_t &= \delta c_t \odot c_{t-1} \odot f(1-f), \quad
    \delta g_t = \delta c_t \odot i \odot (1-g^2)
    \end{aligned}

GRU (gates r, z, n; :math:`a^h_n = W_{hn} h_{t-1} + b_{hn}` saved from the forward pass):

.. math::
    \begin{aligned}
    \delta a_n &= \delta h_t \odot (1-z) \odot (1-n^2), &
    \delta a_z &= \delta h_t \odot (h_{t-1} - n) \odot z(1-z),\\
    \delta a_r &= \delta a_n \odot a^h_n \odot r(1-r), &
    \delta a^h_n &= \delta a_n \odot r, \quad
    \delta h_{t-1} \mathrel{+}= \delta h_t \odot z
    \end{aligned}

The compiled LSTM backward walks time in chunks of :data:`CHUNK_BYTES` of deltas and runs
the weight-gradient GEMMs of each chunk before the next, so the deltas never occupy a whole
``(T, N, 4H)`` buffer. A compiled form runs only where it applies (CPU, float32/float64, no
autocast, no ``torch.func`` transform); everywhere else the cell runs on the engine, and a
double backward or batched gradient of a compiled forward is the ``torch.func.vjp`` of the
definition (:func:`~seqmodels.kernels.engine.definition`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from seqmodels.kernels import compiled, lstm_inference
from seqmodels.kernels.common import (
    final_states,
    in_place_applies,
    last_step_index,
    layer_grads,
    needs_out_of_place,
    projected_buffer,
    real_steps,
    recompute_vjp,
    steps_per_chunk,
    sum_outer_previous,
    zero_padding,
)
from seqmodels.kernels.engine import definition, engine_kernel
from seqmodels.kernels.memory import fresh_buffer
from seqmodels.kernels.regularisation import Regularisation, loop_inputs


def _compiled_for(cell, x: Tensor, *tensors: Tensor):
    """The compiled module where it applies to this call, else ``None`` (run the engine)."""
    if not in_place_applies(x, *tensors, cell.weight_ih, cell.weight_hh):
        return None
    return compiled.usable(x, *tensors, cell.weight_ih, cell.weight_hh)


def _out_of_place_grads(ctx, inputs, cotangents):
    """Backward as the ``torch.func.vjp`` of the cell's definition (double backward,
    batched gradients): ``inputs`` are ``x, *state_0, W_ih, W_hh, b_ih, b_hh``."""
    parts = ctx.parts

    def forward(x, *tensors):
        state0, weights = tensors[:parts], tensors[parts:]
        reg = getattr(ctx, "regularisation", None)
        return definition(ctx.cell, x, state0, weights, ctx.lengths, ctx.reverse, reg)

    return recompute_vjp(forward, inputs, cotangents, ctx.needs_input_grad[: len(inputs)])


# --- LSTM --------------------------------------------------------------------------------------


def lstm_cell_kernel(
    cell,
    x: Tensor,
    state,
    lengths: Tensor | None,
    reverse: bool,
    regularisation: Regularisation | None = None,
):
    """The kernel of :class:`~seqmodels.LSTMCell`: compiled where it applies, else the engine.
    Takes recurrent dropout's mask and zoneout's ``d`` as the engine does."""
    h0, c0 = state
    if _compiled_for(cell, x, h0, c0) is None:
        return engine_kernel(cell, x, state, lengths, reverse, regularisation)
    tensors = (x, h0, c0, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if regularisation is None and lstm_inference.applies(tensors):
        out, h_n, c_n = lstm_inference.lstm_inference(*tensors, lengths, reverse)
    else:
        out, h_n, c_n = CompiledLSTM.apply(*tensors, cell, lengths, reverse, regularisation)[:3]
    return out, (h_n, c_n)


lstm_cell_kernel.takes_regularisation = True  # type: ignore[attr-defined]


class CompiledLSTM(torch.autograd.Function):
    """``(x, h0, c0, W_ih, W_hh, b_ih, b_hh, cell, lengths, reverse, regularisation) ->
    (output, h_n, c_n)``.

    Shapes: ``x`` ``(T, N, I)``, ``h0``/``c0`` ``(N, H)``; ``output`` ``(T, N, H)`` (zeros
    at padded steps), ``h_n``/``c_n`` ``(N, H)`` after each sequence's last real step.
    ``regularisation``: recurrent dropout's mask and zoneout's ``d``
    (:mod:`~seqmodels.kernels.regularisation`), or ``None``. Saved for backward: ``x``,
    ``h0``, ``c0``, the outputs, cell states, activated gates and the weights.
    """

    @staticmethod
    def forward(
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, cell, lengths, reverse, regularisation
    ):
        ext = compiled.usable(x, h0, c0, weight_hh)
        real = real_steps(lengths, x.shape[0])
        x = zero_padding(x, real)
        bias = None if bias_ih is None else bias_ih + bias_hh
        out = x.new_empty(x.shape[0], x.shape[1], weight_hh.shape[1])  # (T, N, H)
        cells = torch.empty_like(out)
        w_hh_t = weight_hh.t().contiguous()  # (H, 4H) row-major: the step GEMM runs faster
        gates = projected_buffer(x, weight_ih, None)  # (T, N, 4H); the loop adds the bias
        h0, c0 = h0.contiguous(), c0.contiguous()
        packed = ext.pack_step_weight(w_hh_t, x.shape[1])  # None unless steps run on MKL
        masks = loop_inputs(regularisation, h0)
        ext.lstm_forward(gates, h0, c0, w_hh_t, bias, out, cells, reverse, packed, *masks)
        h_n, c_n = final_states(out, lengths, reverse), final_states(cells, lengths, reverse)
        return zero_padding(out, real), h_n, c_n, cells, gates

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, cell, lengths, reverse, reg = inputs
        out, _, _, cells, gates = output
        ctx.cell, ctx.lengths, ctx.reverse, ctx.parts = cell, lengths, reverse, 2
        ctx.regularisation = reg
        ctx.has_bias = bias_ih is not None
        ctx.set_materialize_grads(False)  # no (T, N, 4H) of zeros for the unused outputs
        ctx.mark_non_differentiable(cells, gates)
        ctx.save_for_backward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, out, cells, gates)

    @staticmethod
    def backward(ctx, grad_out, grad_h_n, grad_c_n, _grad_cells, _grad_gates):
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, out, cells, gates = ctx.saved_tensors
        cotangents = (grad_out, grad_h_n, grad_c_n)
        if needs_out_of_place(*cotangents, x, h0, weight_hh):
            inputs = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
            return (*_out_of_place_grads(ctx, inputs, cotangents), None, None, None, None)
        real = real_steps(ctx.lengths, x.shape[0])
        tensors = (x, h0, c0, weight_ih, weight_hh, out, cells, gates, ctx.lengths, real)
        ext = compiled.usable(out, cells, gates, c0, weight_hh)
        grads = _lstm_chunked_grads(ext, ctx, tensors, grad_out, grad_h_n, grad_c_n)
        return (*grads, None, None, None, None)


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
    masks = loop_inputs(ctx.regularisation, out)
    starts = list(range(0, steps, size))
    for s in starts if reverse else starts[::-1]:  # the backward walk's order of chunks
        e = min(s + size, steps)
        ext.lstm_backward_chunk(
            *loop, last, reverse, s, e, deltas, carry, dc, *operands,
            grad_x, grad_w_ih, grad_w_hh, grad_b, packed, *masks,
        )  # fmt: skip
    grad_h0 = carry if needs[1] else None  # W_hh^T δ of the first step of the forward pass
    grad_c0 = dc if needs[2] else None
    grad_b_ih = grad_b if needs[5] else None
    grad_b_hh = grad_b if needs[6] else None  # one sum serves both biases
    return grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


# --- GRU ---------------------------------------------------------------------------------------


def gru_cell_kernel(
    cell,
    x: Tensor,
    state: Tensor,
    lengths: Tensor | None,
    reverse: bool,
    regularisation: Regularisation | None = None,
):
    """The kernel of :class:`~seqmodels.GRUCell`: compiled where it applies, else the engine.
    Takes recurrent dropout's mask and zoneout's ``d`` as the engine does."""
    if _compiled_for(cell, x, state) is None:
        return engine_kernel(cell, x, state, lengths, reverse, regularisation)
    tensors = (x, state, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    return CompiledGRU.apply(*tensors, cell, lengths, reverse, regularisation)[:2]


gru_cell_kernel.takes_regularisation = True  # type: ignore[attr-defined]


class CompiledGRU(torch.autograd.Function):
    """``(x, h0, W_ih, W_hh, b_ih, b_hh, cell, lengths, reverse, regularisation) ->
    (output, h_n)``.

    Shapes and ``regularisation`` as :class:`CompiledLSTM`, without the cell state. Saved
    for backward: ``x``, ``h0``, the outputs, activated gates, ``W_hn h_{t-1} + b_hn`` and
    the weights.
    """

    @staticmethod
    def forward(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, cell, lengths, reverse, regularisation
    ):
        ext = compiled.usable(x, h0, weight_hh)
        real = real_steps(lengths, x.shape[0])
        x = zero_padding(x, real)
        out = x.new_empty(x.shape[0], x.shape[1], weight_hh.shape[1])  # (T, N, H)
        hidden_n = torch.empty_like(out)  # W_hn h_{t-1} + b_hn, the reset gate's operand
        w_hh_t = weight_hh.t().contiguous()  # (H, 3H)
        gates = projected_buffer(x, weight_ih, None)  # (T, N, 3H); the loop adds both biases
        packed = ext.pack_step_weight(w_hh_t, x.shape[1], row_blocks=False)  # None: no MKL
        biases, masks = (bias_ih, bias_hh), loop_inputs(regularisation, h0)
        h0 = h0.contiguous()
        ext.gru_forward(gates, h0, w_hh_t, *biases, out, hidden_n, reverse, packed, *masks)
        return zero_padding(out, real), final_states(out, lengths, reverse), gates, hidden_n

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, cell, lengths, reverse, reg = inputs
        out, _, gates, hidden_n = output
        ctx.cell, ctx.lengths, ctx.reverse, ctx.parts = cell, lengths, reverse, 1
        ctx.regularisation = reg
        ctx.has_bias = bias_ih is not None
        ctx.set_materialize_grads(False)  # no (T, N, 3H) of zeros for the unused outputs
        ctx.mark_non_differentiable(gates, hidden_n)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, out, gates, hidden_n)

    @staticmethod
    def backward(ctx, grad_out, grad_h_n, _grad_gates, _grad_hidden_n):
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, out, gates, hidden_n = ctx.saved_tensors
        n = ctx.needs_input_grad
        if needs_out_of_place(grad_out, grad_h_n, x, h0, weight_hh):
            inputs = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
            grads = _out_of_place_grads(ctx, inputs, (grad_out, grad_h_n))
            return (*grads, None, None, None, None)
        real = real_steps(ctx.lengths, x.shape[0])
        mask, keep = loop_inputs(ctx.regularisation, out)
        d_input, d_hidden_n, dh_first, zoneout_h0 = _gru_deltas(
            ctx, out, gates, hidden_n, h0, weight_hh, real, grad_out, grad_h_n, (mask, keep)
        )
        # The input half's gradients; the hidden half's r and z deltas are the input half's,
        # its n deltas are d_hidden_n, so its gradients come by parts (_gru_hidden_grads).
        input_needs = (n[0], False, n[2], False, n[4], False)
        x = zero_padding(x, real)
        grads = list(layer_grads(ctx, input_needs, x, h0, out, weight_ih, weight_hh, d_input, None))
        hidden = _gru_hidden_grads(ctx, n, h0, out, weight_hh, d_input, d_hidden_n, grads[4], mask)
        grads[1], grads[3], grads[5] = hidden
        if n[1]:  # h_0 also reaches h_1 directly: h_1 = n + z * (h_0 - n)
            z_first = gates[-1 if ctx.reverse else 0].chunk(3, -1)[1]
            grads[1] = grads[1].addcmul_(dh_first, z_first)
            if keep is not None:  # and through zoneout: h_1 = h~_1 + d (h_0 - h~_1)
                grads[1] = grads[1].add_(zoneout_h0)
        return (*grads, None, None, None, None)


def _gru_hidden_grads(ctx, needs, h0, out, weight_hh, d_input, d_hidden_n, grad_b_ih, mask):
    """``dh_0`` (before its direct path through z), ``dW_hh``, ``db_hh`` from the hidden
    half's deltas, given as parts: r and z (``d_input``'s) and n (``d_hidden_n``). With
    recurrent dropout's ``mask`` the projection read ``m h_{t-1}``."""
    two = 2 * d_hidden_n.shape[-1]
    d_rz = d_input[..., :two]  # (T, N, 2H), a view
    first = -1 if ctx.reverse else 0
    grad_h0 = grad_w_hh = grad_b_hh = None
    if needs[1]:
        grad_h0 = torch.matmul(d_rz[first], weight_hh[:two])
        grad_h0 = grad_h0.addmm_(d_hidden_n[first], weight_hh[two:])
        if mask is not None:
            grad_h0 = grad_h0.mul_(mask)
    if needs[3]:
        if mask is not None:  # what the projection read
            out, h0 = out * mask, h0 * mask
        parts = (sum_outer_previous(d, out, h0, ctx.reverse) for d in (d_rz, d_hidden_n))
        grad_w_hh = torch.cat(tuple(parts))
    if ctx.has_bias and needs[5]:
        rz = grad_b_ih[:two] if grad_b_ih is not None else d_rz.sum((0, 1))
        grad_b_hh = torch.cat((rz, d_hidden_n.sum((0, 1))))
    return grad_h0, grad_w_hh, grad_b_hh


def _gru_deltas(ctx, out, gates, hidden_n, h0, weight_hh, real, grad_out, grad_h_n, masks):
    """Deltas of the input half (T, N, 3H) of the gates and of the hidden half's n part
    (T, N, H; its r and z deltas are the input half's), dL/dh of the first step processed
    (before h_0's direct path through ``z``) and zoneout's share of dL/dh_0, by the compiled
    loop; ``masks``: :func:`~seqmodels.kernels.regularisation.loop_inputs`."""
    steps, batch, hidden = out.shape
    grad_out = zero_padding(grad_out, real) if grad_out is not None else None
    ext = compiled.usable(out, gates, hidden_n, h0, weight_hh)
    weight_hh = weight_hh.detach().contiguous()
    # Its r, z rows and n rows, each packed once for MKL's step GEMMs (None: no MKL).
    packed = [
        ext.pack_step_weight(w, batch, row_blocks=False)
        for w in weight_hh.split([2 * hidden, hidden])
    ]
    d_input, d_hidden_n, dh, zoneout_h0 = ext.gru_backward(
        gates,
        hidden_n,
        out,
        h0.contiguous(),
        weight_hh,
        grad_out,  # any strides: the loop reads it in place
        None if grad_h_n is None else grad_h_n.contiguous(),
        last_step_index(ctx.lengths, steps, batch, ctx.reverse),
        ctx.reverse,
        fresh_buffer(gates, *gates.shape),  # d_input, (T, N, 3H)
        *packed,
        *masks,
    )
    if real is not None:  # padded steps pass nothing
        d_input.masked_fill_(~real, 0.0)
        d_hidden_n.masked_fill_(~real, 0.0)
    return d_input, d_hidden_n, dh, zoneout_h0
