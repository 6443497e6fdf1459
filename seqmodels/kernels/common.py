"""What every hand-written BPTT kernel shares: transforms, time order, padding, GEMMs, autocast.

Each kernel has two implementations of its maths, chosen per call: an in-place fast path
for plain tensors and first derivatives, and an out-of-place path used when a tensor is
wrapped by a transform (``torch.func.vmap``/``grad``, ``autograd.grad(...,
is_grads_batched=True)``, ``jacobian(..., vectorize=True)``) or when backward itself is
differentiated (``create_graph=True``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from seqmodels.core.padding import length_mask
from seqmodels.kernels.memory import fresh_buffer


def any_wrapped(*tensors: Tensor | None) -> bool:
    """True if a tensor is batched or wrapped by a transform: ``torch.func`` (vmap, grad,
    jvp) or the batching of ``autograd.grad(..., is_grads_batched=True)``."""
    functorch = torch._C._functorch
    return any(
        t is not None
        and (functorch.is_functorch_wrapped_tensor(t) or functorch.is_legacy_batchedtensor(t))
        for t in tensors
    )


def in_place_applies(*tensors: Tensor | None) -> bool:
    """True when a cell's in-place or compiled form may run this call: no autocast, no
    ``torch.func`` transform and no forward-mode dual (the engine runs those)."""
    present = [t for t in tensors if t is not None]
    if torch.is_autocast_enabled(present[0].device.type) or any_wrapped(*present):
        return False
    return all(torch.autograd.forward_ad.unpack_dual(t).tangent is None for t in present)


def needs_out_of_place(*tensors: Tensor | None) -> bool:
    """Backward must be out of place: it is differentiated, or runs under a transform."""
    return torch.is_grad_enabled() or any_wrapped(*tensors)


def in_order(steps: Sequence[Tensor], reverse: bool) -> Sequence[Tensor]:
    """Time slices in processing order (last step first when ``reverse``)."""
    return steps[::-1] if reverse else steps


def backward_order(steps: int, reverse: bool) -> list[int]:
    """Time indices in the order backward visits them: the forward processing order reversed."""
    return list(range(steps)) if reverse else list(range(steps - 1, -1, -1))


def backward_steps(
    deltas: Tensor,
    weight_hh: Tensor,
    dh: Tensor,
    grad_out: Tensor | None,
    grad_h_n: Tensor | None,
    lengths: Tensor | None,
    reverse: bool,
) -> Iterator[tuple[int, int | None]]:
    """Walk time backwards, yielding ``(t, later)`` with ``dh`` already set for step t.

    ``dh = G_t + W_hh^T deltas[later]`` (+ ``dL/dh_n`` at each sequence's last step), where
    ``later`` is the step processed just after t (``None`` for the last one) and
    ``deltas`` ``(T, N, ...)`` the gate deltas the caller writes at each step.
    """
    steps, batch = deltas.shape[0], deltas.shape[1]
    flat = deltas.reshape(steps, batch, math.prod(deltas.shape[2:])).unbind(0)  # views, once
    grads = None if grad_out is None else grad_out.unbind(0)
    rows = {} if grad_h_n is None else last_steps(lengths, steps, reverse)
    order = backward_order(steps, reverse)
    # The last step processed has no later step; every other one gets W_hh^T delta_later.
    # (The loop is the hot path at small batch sizes: one GEMM call per step, no helpers.)
    if grads is None:
        dh.zero_()
    else:
        dh.copy_(grads[order[0]])
    for i, t in enumerate(order):
        if i:
            later = order[i - 1]
            if grads is None:
                torch.mm(flat[later], weight_hh, out=dh)
            else:
                torch.addmm(grads[t], flat[later], weight_hh, out=dh)
        if t in rows:
            add_rows_(dh, rows[t], grad_h_n)
        yield t, (order[i - 1] if i else None)


def real_steps(lengths: Tensor | None, steps: int) -> Tensor | None:
    """Boolean ``(T, N, 1)``: True where step t is a real step of sequence n."""
    if lengths is None:
        return None
    return length_mask(lengths, steps, time_major=True).unsqueeze(-1)


def zero_padding(x: Tensor, real: Tensor | None) -> Tensor:
    """Padded steps replaced by zeros (a select: NaN or inf there reaches no value or gradient)."""
    return x if real is None else torch.where(real, x, 0.0)


def final_states(out: Tensor, lengths: Tensor | None, reverse: bool) -> Tensor:
    """Each sequence's state after its own last real step: ``(T, N, H) -> (N, H)``."""
    if lengths is None:
        return out[0 if reverse else -1].clone()
    return out[lengths - 1, torch.arange(out.shape[1], device=out.device)]


def last_step_index(
    lengths: Tensor | None,
    steps: int,
    batch: int,
    reverse: bool,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Each sequence's last processed time step as an int64 ``(N,)`` tensor on ``device``:
    where its final-state gradient enters backward.

    That is step ``T - 1`` (``0`` when ``reverse``) without padding; with ``lengths`` (never
    reversed: padded batches are reversed per sequence by the layer) ``lengths - 1``.
    """
    if lengths is None:
        return torch.full((batch,), 0 if reverse else steps - 1, dtype=torch.int64, device=device)
    return (lengths - 1).to(device=device, dtype=torch.int64).contiguous()


def last_steps(lengths: Tensor | None, steps: int, reverse: bool) -> dict[int, Tensor | None]:
    """:func:`last_step_index` grouped by time step: step -> its rows (``None``: every row),
    the rows on the device of ``lengths``."""
    if lengths is None:
        return {0 if reverse else steps - 1: None}
    last = last_step_index(lengths, steps, lengths.shape[0], reverse, device=lengths.device)
    return {t: torch.nonzero(last == t).flatten() for t in torch.unique(last).tolist()}


def add_rows_(target: Tensor, rows: Tensor | None, source: Tensor) -> None:
    """``target[rows] += source[rows]`` in place (every row when ``rows`` is None)."""
    if rows is None:
        target.add_(source)
    else:
        target.index_add_(0, rows, source.index_select(0, rows))


def sum_outer(a: Tensor, b: Tensor) -> Tensor:
    """``sum_{t,n} a[t,n]^T b[t,n]`` as one GEMM: ``(T, N, H), (T, N, J) -> (H, J)``."""
    rows = a.shape[0] * a.shape[1]  # explicit sizes: a batch of 0 has no -1 to infer
    return torch.matmul(a.reshape(rows, a.shape[2]).t(), b.reshape(rows, b.shape[2]))


def sum_outer_previous(deltas: Tensor, states: Tensor, initial: Tensor, reverse: bool) -> Tensor:
    """``sum_t deltas[t]^T h_prev(t)``: each step's deltas against the state processed just
    before it (``initial`` for the first), as two GEMMs over views, no shifted copy."""
    first = -1 if reverse else 0
    total = torch.matmul(deltas[first].t(), initial)
    if deltas.shape[0] > 1:
        current, previous = (deltas[:-1], states[1:]) if reverse else (deltas[1:], states[:-1])
        total = total + sum_outer(current, previous)
    return total


def steps_per_chunk(chunk_bytes: int, steps: int, step_bytes: int) -> int:
    """How many time steps of ``step_bytes`` each fit a chunk of ``chunk_bytes`` (1 to
    ``steps``): the chunk length of the gated kernels' chunked loops."""
    return max(1, min(steps, chunk_bytes // max(1, step_bytes)))


def mul_previous_(target: Tensor, states: Tensor, initial: Tensor, reverse: bool) -> None:
    """``target[t] *= state processed just before t`` in place, for every step (no copies)."""
    first = -1 if reverse else 0
    if target.shape[0] > 1:
        if reverse:
            target[:-1].mul_(states[1:])
        else:
            target[1:].mul_(states[:-1])
    target[first].mul_(initial)


def layer_grads(ctx, needs, x, h0, out, weight_ih, weight_hh, d_input, d_hidden):
    """Whole-sequence GEMMs: ``dx, dh0, dW_ih, dW_hh, db_ih, db_hh`` from the deltas.

    ``needs`` says which of those six are wanted. ``d_input`` are the deltas of the input
    projection's pre-activations, ``d_hidden`` of the recurrent one's (the same tensor for
    Elman and LSTM; the GRU passes ``None`` and computes the hidden half by parts).
    ``ctx`` gives ``reverse``, ``has_bias``.
    """
    first = -1 if ctx.reverse else 0
    grad_x = torch.matmul(d_input, weight_ih) if needs[0] else None
    grad_h0 = torch.matmul(d_hidden[first], weight_hh) if needs[1] else None
    grad_w_ih = sum_outer(d_input, x) if needs[2] else None
    grad_w_hh = sum_outer_previous(d_hidden, out, h0, ctx.reverse) if needs[3] else None
    grad_b_ih = grad_b_hh = None
    if ctx.has_bias:
        shared = d_hidden is d_input  # then one sum serves both biases
        sum_input = d_input.sum((0, 1)) if needs[4] or (shared and needs[5]) else None
        grad_b_ih = sum_input if needs[4] else None
        if needs[5]:
            grad_b_hh = sum_input if shared else d_hidden.sum((0, 1))
    return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


def projected_buffer(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ W^T + bias`` for every step, in a fresh contiguous ``(T, N, R)`` buffer."""
    steps, batch, features = x.shape
    rows = weight.shape[0]
    out = fresh_buffer(x, steps, batch, rows)  # huge pages when large: touched once per call
    x2d, out2d = x.contiguous().view(steps * batch, features), out.view(steps * batch, rows)
    if bias is None:
        torch.mm(x2d, weight.t(), out=out2d)
    else:
        torch.addmm(bias, x2d, weight.t(), out=out2d)
    return out


def apply_with_autocast(function: Callable, tensors: Sequence[Tensor | None], *rest) -> tuple:
    """``function(*tensors, *rest)``; under ``torch.autocast`` the tensors are cast to the
    autocast dtype first (as torch's RNN modules compute in it) and autocast is turned off."""
    device_type = tensors[0].device.type
    context = contextlib.nullcontext()
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        tensors = [None if t is None else t.to(dtype) for t in tensors]
        context = torch.autocast(device_type, enabled=False)
    with context:
        return function(*tensors, *rest)


def recompute_vjp(
    forward: Callable[..., tuple[Tensor, ...]],
    inputs: Sequence[Tensor | None],
    cotangents: Sequence[Tensor | None],
    needs: Sequence[bool],
) -> list[Tensor | None]:
    """The out-of-place backward: the kernel's out-of-place forward, differentiated.

    ``torch.func.vjp`` composes with ``vmap`` and with an outer autograd graph, so the
    gradients it returns can be batched or differentiated again.
    """
    present = [i for i, t in enumerate(inputs) if t is not None]

    def call(*tensors: Tensor) -> tuple[Tensor, ...]:
        full = list(inputs)
        for i, t in zip(present, tensors, strict=True):
            full[i] = t
        return forward(*full)

    outputs, vjp = torch.func.vjp(call, *(inputs[i] for i in present))
    cotangents = [
        torch.zeros_like(o) if c is None else c for o, c in zip(outputs, cotangents, strict=True)
    ]
    grads = vjp(tuple(cotangents))
    result: list[Tensor | None] = [None] * len(inputs)
    for i, g in zip(present, grads, strict=True):
        result[i] = g if needs[i] else None
    return result
