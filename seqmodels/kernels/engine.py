r"""The BPTT engine: one layer, one direction, of any :class:`~seqmodels.ProjectedCell`.

A cell describes one step (:class:`~seqmodels.cells.base.ProjectedCell`); the engine owns
everything about time, once for every cell:

* the input projection ``a = W_ih x + b_ih`` of every step as one GEMM, differentiated by
  autograd (``dL/dW_ih`` and ``dL/dx`` are whole-sequence GEMMs there);
* the walk over time, forwards or (``reverse=True``) backwards, with one GEMM per step
  for the recurrent projection ``r_t = W_hh h_{t-1} + b_hh`` (an elementwise product for a
  diagonal recurrence);
* padding: padded inputs are zeroed before the projection, so NaN or inf there reach no
  value or gradient; every step runs for every row, outputs are zero at padded steps and
  the final state is read at each sequence's own last step, where its gradient enters
  backward, so nothing flows through padding;
* backward: the walk reversed, ``dL/dh_{t-1} = W_hh^T dL/dr_t + (the step's direct
  paths)``, then ``dL/dW_hh = sum_t dL/dr_t h_{t-1}^T`` and ``dL/db_hh`` as whole-sequence
  GEMMs;
* the step's derivative: the cell's hand-written :meth:`~ProjectedCell.step_backward`, or,
  for a cell that writes only its step, the ``torch.func.vjp`` of that step traced once into
  a graph of aten ops (:func:`derive_step_backward`), which recomputes the step from the
  inputs the forward walk kept (no per-step weight-gradient GEMMs and no graph through the
  projections: those are the engine's);
* autocast (inputs and weights cast to the autocast dtype, as torch's RNN modules do);
* ``torch.func`` transforms and double backward: backward is then the ``torch.func.vjp`` of
  the same walk written out of place (:func:`~seqmodels.kernels.common.recompute_vjp`).

The walk in one direction (``reverse=False``; ``state`` a tuple whose first element is ``h``)::

    a = project_input(x)                                  # (T, N, G*H), one GEMM
    for t in range(T):
        a_t, r_t = a[t], h @ W_hh^T + b_hh                # (N, G*H) each
        state = cell.step(a_t, r_t, state)                # h = state[0]
        out[t] = h

Fast forms for particular cells (Elman's in-place walk, the LSTM's and GRU's compiled
loops) are registered beside the engine (:func:`seqmodels.kernels.register_kernel`) and held
to this definition by tests.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

from seqmodels.cells.base import ProjectedCell, recurrent_projection
from seqmodels.core.state import State
from seqmodels.kernels.common import (
    add_rows_,
    any_wrapped,
    apply_with_autocast,
    backward_order,
    final_states,
    in_order,
    last_step_index,
    last_steps,
    mul_previous_,
    needs_out_of_place,
    real_steps,
    recompute_vjp,
    sum_outer_previous,
    zero_padding,
)
from seqmodels.kernels.compiled_step import Graph
from seqmodels.kernels.compiled_step import setting as compile_setting
from seqmodels.kernels.regularisation import Regularisation

#: The four projection tensors; every other parameter of a cell is one its step reads.
PROJECTION_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@dataclass(frozen=True)
class Walk:
    """What one call of the engine holds constant: the cell and the direction of time."""

    cell: ProjectedCell
    step_names: tuple[str, ...]  # the cell's other parameters, in the Function's inputs
    parts: int  # tensors in the state
    tuple_state: bool  # the state is a tuple (else one tensor)
    reverse: bool
    regularisation: Regularisation | None = None  # recurrent dropout and zoneout masks


def step_parameter_names(cell: ProjectedCell) -> tuple[str, ...]:
    """The names of the parameters ``cell.step`` reads: all but the projections' and the
    cell's ``input_parameters`` (read by ``project_input``, which autograd differentiates)."""
    inputs = tuple(cell.input_parameters)
    return tuple(
        n
        for n, _ in cell.named_parameters()
        if n not in PROJECTION_NAMES
        and not n.startswith("parametrizations.")
        and not any(n == p or n.startswith(p + ".") for p in inputs)
    )


def engine_kernel(
    cell: ProjectedCell,
    x: Tensor,
    state: State,
    lengths: Tensor | None,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x`` ``(T, N, I)`` from ``state``: ``(output (T, N, H), final)``.

    ``lengths`` ``(N,)`` int64 or ``None``; ``reverse=True`` (only with ``lengths=None``)
    walks time from the last step. The kernel signature of :mod:`seqmodels.kernels`, plus
    the masks of recurrent dropout and zoneout (:mod:`~seqmodels.kernels.regularisation`).
    """
    if reverse and lengths is not None:
        raise ValueError("reverse=True needs lengths=None; reverse padded batches per sequence")
    parts = (state,) if isinstance(state, Tensor) else tuple(state)
    names = step_parameter_names(cell)
    walk = Walk(cell, names, len(parts), not isinstance(state, Tensor), reverse, regularisation)
    params = tuple(_attribute(cell, n) for n in names)
    tensors = (x, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, *parts, *params)
    output, *final = apply_with_autocast(_apply, tensors, walk, lengths)[: 1 + walk.parts]
    return output, (final[0] if isinstance(state, Tensor) else tuple(final))


def definition(
    cell: ProjectedCell,
    x: Tensor,
    state0: Sequence[Tensor],
    weights: Sequence[Tensor | None],
    lengths: Tensor | None,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, ...]:
    """What every path of ``cell`` computes, out of place: ``(output, *final_state)`` of the
    walk over ``x`` from the state tensors ``state0``, with the cell's projection tensors
    replaced by ``weights`` (``W_ih, W_hh, b_ih, b_hh``). Differentiable and batchable: the
    reference that compiled forms are held to, and their ``torch.func.vjp``."""
    walk = Walk(cell, (), len(state0), len(state0) > 1, reverse, regularisation)
    a, bias_r = _project_input(cell, x, weights, lengths)
    states = _walk_functional(walk, a, weights[1], bias_r, tuple(state0), ())
    return _results(states, lengths, reverse)


def _project_input(
    cell: ProjectedCell, x: Tensor, weights: Sequence[Tensor | None], lengths: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """``(a (T, N, G*H), bias of r)`` through ``weights`` (``W_ih, W_hh, b_ih, b_hh``): the
    input projection, differentiated by autograd (one GEMM each way). Padded inputs are
    zeroed first, so padding never reaches the maths."""
    x = zero_padding(x, real_steps(lengths, x.shape[0]))
    with swapped(cell, dict(zip(PROJECTION_NAMES, weights, strict=True))):
        return cell.project_input(x), cell.projection_biases()[1]


def _apply(x, weight_ih, weight_hh, bias_ih, bias_hh, *rest):
    *tensors, walk, lengths = rest
    cell = walk.cell
    a, bias_r = _project_input(cell, x, (weight_ih, weight_hh, bias_ih, bias_hh), lengths)
    return EngineBPTT.apply(walk, lengths, a, weight_hh, bias_r, *tensors)


class EngineBPTT(torch.autograd.Function):
    """``(walk, lengths, a, W_hh, b_r, *state_0, *step_params) -> (output, *final_state)``.

    ``a`` ``(T, N, G*H)`` is the input projection; ``b_r`` the recurrent projection's bias
    (``None`` when folded into ``a``). Returns ``output`` ``(T, N, H)`` (zeros at padded
    steps) and each state tensor after each sequence's last real step.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(walk: Walk, lengths, a, weight_hh, bias_r, *tensors):
        state0, params = tensors[: walk.parts], tensors[walk.parts :]
        if any_wrapped(a, weight_hh, *state0, *params):
            states = _walk_functional(walk, a, weight_hh, bias_r, state0, params)
            return _results(states, lengths, walk.reverse)
        states, tape = _walk_saving(walk, a, weight_hh, bias_r, state0, params)
        return (*_results(states, lengths, walk.reverse), tape)

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        walk, lengths, a, weight_hh, bias_r, *tensors = inputs
        ctx.walk, ctx.has_bias_r = walk, bias_r is not None
        ctx.set_materialize_grads(False)
        # The fast forward also returns its tape: per-step states and records for backward.
        ctx.tape = output[-1] if isinstance(output[-1], _Tape) else None
        ctx.save_for_backward(lengths, a, weight_hh, bias_r, *tensors)

    @staticmethod
    def backward(ctx, grad_out, *grads):  # grads: of each final state (and of the tape)
        walk = ctx.walk
        saved = ctx.saved_tensors
        lengths, a, weight_hh, bias_r = saved[:4]
        tensors = saved[4 : 4 + walk.parts + len(walk.step_names)]
        grad_final = grads[: walk.parts]
        if ctx.tape is None or needs_out_of_place(grad_out, *grad_final, a, weight_hh):

            def forward(a, weight_hh, bias_r, *tensors):
                state0, params = tensors[: walk.parts], tensors[walk.parts :]
                states = _walk_functional(walk, a, weight_hh, bias_r, state0, params)
                return _results(states, lengths, walk.reverse)

            inputs = (a, weight_hh, bias_r, *tensors)
            grads = recompute_vjp(
                forward, inputs, (grad_out, *grad_final), ctx.needs_input_grad[2:]
            )
            return None, None, *grads
        states = ctx.tape.states
        backward = _backward_chunked if ctx.tape.chunked else _backward
        return None, None, *backward(ctx, a, weight_hh, tensors, states, grad_out, grad_final)


class _Tape:
    """What the forward walk keeps for backward: every state ``(T, N, ...)`` and, per step
    in processing order, the step's record. An opaque output of the Function (not a
    tensor), so autograd leaves it alone."""

    def __init__(self, steps: list, states: tuple[Tensor, ...], chunked: bool = False) -> None:
        # chunked: ``steps`` is ``(a, r)``, every step's record stacked in processing order
        self.steps, self.states, self.chunked = steps, states, chunked


# --- forward -----------------------------------------------------------------------------------


def _as_tuple(state: State) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


def _as_state(parts: Sequence[Tensor], tuple_state: bool) -> State:
    return tuple(parts) if tuple_state else parts[0]


def _walk(walk: Walk, a, weight, bias_r, state0, tape: list | None):
    """The forward walk: the states ``(T, N, ...)`` per state tensor, in time order.

    ``weight`` is ``W_hh^T`` (or the diagonal's vector). With a ``tape``, each step's record
    for the derivative is appended to it in processing order (the hand-written path's
    ``saved``, or the step's inputs, from which the derived derivative recomputes it);
    without one, the walk is out of place end to end: batchable and differentiable."""
    cell, tuple_state, reg = walk.cell, walk.tuple_state, walk.regularisation
    hand_written = tape is not None and cell.has_step_backward()
    sums = cell.sums_projections
    state = tuple(state0)
    per_part: list[list[Tensor]] = [[] for _ in state0]
    steps = a.shape[0]
    for k, a_t in enumerate(in_order(a.unbind(0), walk.reverse)):
        h_in = state[0] if reg is None else reg.recurrent_input(state[0])
        a_t, r_t = recurrent_projection(a_t, h_in, weight, bias_r, cell.recurrence, sums)
        if hand_written:
            new, record = cell.step_forward(a_t, r_t, _as_state(state, tuple_state))
        else:
            new, record = cell.step(a_t, r_t, _as_state(state, tuple_state)), (a_t, r_t)
        if tape is not None:
            tape.append(record)
        new = _as_tuple(new)
        if reg is not None and reg.keep is not None:  # zoneout: some units keep h_{t-1}
            t = steps - 1 - k if walk.reverse else k
            new = (reg.zoneout(t, new[0], state[0]), *new[1:])
        state = new
        for part, t in zip(per_part, state, strict=True):
            part.append(t)
    return tuple(torch.stack(in_order(p, walk.reverse)) for p in per_part)


def _walk_saving(walk: Walk, a, weight_hh, bias_r, state0, params):
    """The walk that keeps what the step's derivative needs: ``(states, tape)``.

    The step reads ``params`` (the cell's own parameters, or their copies in the autocast
    dtype, which backward differentiates too), so every tensor of a step has one dtype."""
    weight = _recurrent_weight(walk.cell, weight_hh)
    if not walk.cell.has_step_backward() and compile_setting() != "0":
        return _walk_chunked(walk, a, weight, bias_r, state0, params)
    tape: list = []
    with swapped(walk.cell, dict(zip(walk.step_names, params, strict=True))):
        states = _walk(walk, a, weight, bias_r, state0, tape)
    return states, _Tape(tape, states)


def _walk_functional(walk: Walk, a, weight_hh, bias_r, state0, params):
    """The same walk out of place and through the given parameter tensors (batchable and
    differentiable): the definition of what every other path computes."""
    cell = walk.cell
    weight = weight_hh if cell.recurrence == "diagonal" else weight_hh.t()
    with swapped(cell, dict(zip(walk.step_names, params, strict=True))):
        return _walk(walk, a, weight, bias_r, state0, None)


def _results(states, lengths, reverse):
    """``(output, *final_state)`` from the per-step states ``(T, N, ...)``."""
    real = real_steps(lengths, states[0].shape[0])
    finals = (final_states(s, lengths, reverse) for s in states)
    return (zero_padding(states[0], real), *finals)


def _recurrent_weight(cell: ProjectedCell, weight_hh: Tensor) -> Tensor:
    """``W_hh^T`` as a row-major copy (the step GEMM runs faster on it), or the vector."""
    if cell.recurrence == "diagonal":
        return weight_hh
    return weight_hh.t().contiguous()


# --- backward ----------------------------------------------------------------------------------


def _backward(ctx, a, weight_hh, tensors, states, grad_out, grad_final):
    """``dL/da, dL/dW_hh, dL/db_r, dL/dstate_0..., dL/dparams...`` by the reverse walk."""
    walk = ctx.walk
    cell, reverse, parts = walk.cell, walk.reverse, walk.parts
    state0, params = tensors[:parts], tensors[parts:]
    steps = a.shape[0]
    lengths = ctx.saved_tensors[0]
    real = real_steps(lengths, steps)
    grad_out = None if grad_out is None else zero_padding(grad_out, real).unbind(0)
    rows = [{} if g is None else last_steps(lengths, steps, reverse) for g in grad_final]
    diagonal = cell.recurrence == "diagonal"
    sums = cell.sums_projections
    hand_written = cell.has_step_backward()
    reg = walk.regularisation
    mask = None if reg is None or reg.recurrent_mask is None else reg.recurrent_mask.to(a.dtype)
    zoneout = reg is not None and reg.keep is not None
    order = backward_order(steps, reverse)
    grad_a: list[Tensor] = [None] * steps  # type: ignore[list-item]
    grad_r: list[Tensor] = [None] * steps  # type: ignore[list-item]
    grad_params = [None] * len(params)
    carry: tuple[Tensor | None, ...] = (None,) * parts  # the direct paths into s_t
    later_r = None  # dL/dr of the step processed after this one
    prev_states = [s.unbind(0) for s in states]
    derivative = None
    for t in order:
        grad_h = grad_out[t] if grad_out is not None else None
        if later_r is not None:  # W_hh^T dL/dr of the next step processed (through m)
            if diagonal or mask is not None:
                back = _recurrent_back(later_r, weight_hh, diagonal, mask)
                grad_h = back if grad_h is None else grad_h + back
            elif grad_h is None:
                grad_h = torch.mm(later_r, weight_hh)
            else:
                grad_h = torch.addmm(grad_h, later_r, weight_hh)
        grad_state = [grad_h, *carry[1:]]
        if carry[0] is not None:
            grad_state[0] = carry[0] if grad_state[0] is None else grad_state[0] + carry[0]
        for k, g in enumerate(grad_final):
            if t in rows[k]:
                base = grad_state[k]
                grad_state[k] = base = torch.zeros_like(g) if base is None else base.clone()
                add_rows_(base, rows[k][t], g)
        grad_state = tuple(
            torch.zeros_like(state0[k]) if g is None else g for k, g in enumerate(grad_state)
        )
        zoned = None
        if zoneout:  # the kept units pass dL/dh_t straight to h_{t-1}
            zoned = grad_state[0] * reg.keep_at(t)
            grad_state = (grad_state[0] - zoned, *grad_state[1:])
        previous = _previous(prev_states, state0, t, reverse)
        record = ctx.tape.steps[t if not reverse else steps - 1 - t]  # processing order
        if hand_written:
            ga, gr, carry = cell.step_backward(grad_state, record, previous)
        else:
            derivative = derivative or derived_step_backward(cell, walk, record, previous, params)
            ga, gr, carry, found = derivative(record, previous, grad_state, params)
            for k, g in enumerate(found):
                grad_params[k] = g if grad_params[k] is None else grad_params[k] + g
        if zoned is not None:
            carry = (zoned if carry[0] is None else carry[0] + zoned, *carry[1:])
        ga = torch.zeros_like(a[t]) if ga is None else ga
        grad_a[t] = ga
        later_r = ga if sums else gr
        grad_r[t] = later_r
    grad_a_all = torch.stack(grad_a)
    grad_r_all = grad_a_all if sums else torch.stack(grad_r)
    return _weight_gradients(
        ctx, weight_hh, tensors, states, grad_a_all, grad_r_all, carry, grad_params, mask
    )


def _weight_gradients(
    ctx, weight_hh, tensors, states, grad_a_all, grad_r_all, carry, grad_params, mask
):
    """The Function's gradients once the reverse walk has given ``dL/da`` and ``dL/dr`` of
    every step ``(T, N, G*H)`` (time order), the direct paths into ``s_0`` (``carry``) and the
    step parameters' gradients: ``dL/dW_hh``, ``dL/db_r`` and ``dL/ds_0`` by whole-sequence
    GEMMs."""
    walk, needs = ctx.walk, ctx.needs_input_grad
    cell, reverse, parts = walk.cell, walk.reverse, walk.parts
    state0 = tensors[:parts]
    diagonal, sums = cell.recurrence == "diagonal", cell.sums_projections
    steps = grad_a_all.shape[0]
    real = real_steps(ctx.saved_tensors[0], steps)
    first = backward_order(steps, reverse)[-1]
    if real is not None:  # padded steps pass nothing
        grad_a_all = grad_a_all.masked_fill(~real, 0.0)
        grad_r_all = grad_a_all if sums else grad_r_all.masked_fill(~real, 0.0)
    # dL/ds_0: the first step's direct paths, and h_0's recurrent projection.
    h0_back = _recurrent_back(grad_r_all[first], weight_hh, diagonal, mask)
    grad_state0 = list(carry)
    grad_state0[0] = h0_back if carry[0] is None else carry[0] + h0_back
    grad_w = grad_b = None
    if needs[3]:
        h, h0 = states[0], state0[0]
        if mask is not None:  # the projection read m * h_{t-1}
            h, h0 = h * mask, h0 * mask
        if diagonal:  # sum_t dL/dr_t * h_{t-1}, over time and batch
            products = grad_r_all.clone()
            mul_previous_(products, h, h0, reverse)
            grad_w = products.sum((0, 1))
        else:
            grad_w = sum_outer_previous(grad_r_all, h, h0, reverse)
    if ctx.has_bias_r and needs[4]:
        grad_b = grad_r_all.sum((0, 1))
    grad_state0 = [g if needs[5 + k] else None for k, g in enumerate(grad_state0)]
    return grad_a_all if needs[2] else None, grad_w, grad_b, *grad_state0, *grad_params


def _recurrent_back(grad_r: Tensor, weight_hh: Tensor, diagonal: bool, mask: Tensor | None):
    """``dL/dh_{t-1}`` through the recurrent projection: ``m ⊙ (W_hh^T dL/dr_t)``."""
    back = grad_r * weight_hh if diagonal else torch.mm(grad_r, weight_hh)
    return back if mask is None else back * mask


#: Traced step derivatives per cell, by the signature of the tensors they were traced on.
_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _signature(*groups) -> tuple:
    """What a traced graph is specialised to: each tensor's shape, dtype and device."""
    return tuple(
        None if t is None else (t.shape, t.dtype, t.device) for group in groups for t in group
    )


def _graph(cell: ProjectedCell, key: tuple, make) -> Graph:
    """The traced graph of ``cell`` under ``key``, made by ``make()`` on first use."""
    per_cell = _DERIVED.setdefault(cell, {})
    if key not in per_cell:
        per_cell[key] = make()
    return per_cell[key]


def derived_step_backward(cell: ProjectedCell, walk: Walk, record, previous, params):
    """:func:`derive_step_backward` for one sequence's reverse walk, traced once per cell
    and tensor signature: ``(record, s_{t-1}, dL/ds_t, params) -> (dL/da_t, dL/dr_t,
    dL/ds_{t-1}, dL/dparams)``."""
    key = ("backward", walk.parts, walk.step_names) + _signature(record, previous, params)
    graph = _graph(cell, key, lambda: derive_step_backward(cell, walk, record, previous, params))
    run, has_r = graph.runner(), record[1] is not None

    def derivative(record, previous, grad_state, params):
        out = run(*(record if has_r else record[:1]), *previous, *grad_state, *params)
        ga, gr, rest = out[0], (out[1] if has_r else None), out[1 + has_r :]
        return ga, gr, tuple(rest[: walk.parts]), tuple(rest[walk.parts :])

    return derivative


def derive_step_backward(cell: ProjectedCell, walk: Walk, record, previous, params) -> Graph:
    """The derivative of ``cell.step`` as a :class:`~seqmodels.kernels.compiled_step.Graph`:
    ``(a_t, [r_t], *s_{t-1}, *dL/ds_t, *params) -> (dL/da_t, [dL/dr_t], *dL/ds_{t-1},
    *dL/dparams)``.

    The ``torch.func.vjp`` of the step is traced by ``make_fx`` into one graph of aten ops
    (the step's forward, recomputed, and its backward), so each step of the reverse walk runs
    those ops with no autograd graph to build or walk, and Inductor compiles the graph into
    one fused kernel once it is hot. A step that cannot be traced (Python control flow on
    tensor values) runs ``torch.func.vjp`` at every step instead."""
    a_t, r_t = record
    has_r = r_t is not None  # None when the step reads a_t + r_t as one tensor
    flat = _step_vjp(cell, walk, has_r)
    inputs = (a_t, r_t) if has_r else (a_t,)
    return Graph(flat, (*inputs, *previous, *previous, *params))


#: Steps per traced graph of a derived step: one call of a compiled graph runs this many
#: steps, forwards or backwards, so its fixed cost per call is shared by them.
CHUNK_STEPS = 8


def _chunks(steps: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk of processing-order steps."""
    return [(i, min(i + CHUNK_STEPS, steps)) for i in range(0, steps, CHUNK_STEPS)]


def _processing(x: Tensor, reverse: bool) -> Tensor:
    """A ``(T, ...)`` tensor in processing order (time reversed when ``reverse``)."""
    return x.flip(0) if reverse else x


# The chunked walks read and write whole-sequence tensors a chunk at a time, in processing
# order, so that no (T, ...) tensor is flipped, concatenated or padded whole: each such
# tensor is a fresh allocation of megabytes per call, first touched page by page.


def _steps_of(x: Tensor, start: int, stop: int, reverse: bool) -> Tensor:
    """Processing-order steps ``[start, stop)`` of ``x`` ``(T, ...)``, which is in time
    order: a view forwards, a chunk-sized flipped copy backwards."""
    if not reverse:
        return x[start:stop]
    steps = x.shape[0]
    return x[steps - stop : steps - start].flip(0)


def _put_steps(target: Tensor, chunk: Tensor, start: int, reverse: bool) -> None:
    """Write processing-order steps ``chunk`` from ``start`` into time-ordered ``target``."""
    stop = start + chunk.shape[0]
    if reverse:
        steps = target.shape[0]
        target[steps - stop : steps - start].copy_(chunk.flip(0))
    else:
        target[start:stop].copy_(chunk)


def _filled(buffer: Tensor | None, like: Tensor, steps: int) -> Tensor:
    """``buffer``, or a new ``(steps, ...)`` one shaped as each step of ``like``."""
    return like.new_empty((steps, *like.shape[1:])) if buffer is None else buffer


def _regularisation_inputs(walk: Walk, dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
    """The recurrent dropout mask ``(N, H)`` and zoneout's ``d`` in processing order
    (``(T, N, H)``, or a 0-d tensor in eval), as graph inputs."""
    reg = walk.regularisation
    if reg is None:
        return None, None
    mask = None if reg.recurrent_mask is None else reg.recurrent_mask.to(dtype)
    keep = reg.keep
    if isinstance(keep, Tensor):
        keep = _processing(keep.to(dtype), walk.reverse)
    elif keep is not None:
        keep = torch.tensor(keep, dtype=dtype)
    return mask, keep


def _keep_at(keep: Tensor | None, j: int) -> Tensor | None:
    return keep if keep is None or keep.dim() == 0 else keep[j]


def _chunk_graph(walk: Walk, kind: str, k: int, tensors: Sequence[Tensor | None], make):
    """The traced (and, once hot, compiled) graph of ``k`` steps, one per cell, kind, chunk
    length and tensor signature; ``None`` entries of ``tensors`` are absent inputs."""
    key = (kind, k, walk.parts, walk.step_names) + _signature(tensors)
    return _graph(walk.cell, key, lambda: Graph(make(), [t for t in tensors if t is not None]))


def _walk_chunked(walk: Walk, a, weight, bias_r, state0, params):
    """The saving walk of a step without a hand-written derivative: ``CHUNK_STEPS`` steps
    (recurrent projection, step, recurrent dropout and zoneout) per call of one traced graph.
    Returns the states ``(T, N, ...)`` in time order and a chunked :class:`_Tape`: every
    step's record ``(a_t, r_t)`` stacked in processing order."""
    cell, parts, reverse = walk.cell, walk.parts, walk.reverse
    sums, names = cell.sums_projections, walk.step_names
    mask, keep = _regularisation_inputs(walk, a.dtype)
    steps = a.shape[0]
    state = tuple(s.contiguous() for s in state0)
    states: list[Tensor | None] = [None] * parts  # time order
    records: list[Tensor | None] = [None, None]  # processing order
    runners: dict[int, Any] = {}
    for start, stop in _chunks(steps):
        k = stop - start
        keep_c = keep if keep is None or keep.dim() == 0 else keep[start:stop]
        a_c = _steps_of(a, start, stop, reverse)
        inputs = (a_c, *state, weight, bias_r, mask, keep_c, *params)
        if k not in runners:

            def make(k=k, has=tuple(t is not None for t in inputs)):
                def flat(*tensors):
                    it = iter(tensors)
                    a_c, state = next(it), tuple(next(it) for _ in range(parts))
                    weight, bias, mask, keep = (
                        next(it) if h else None for h in has[1 + parts : 5 + parts]
                    )
                    values = tuple(it)
                    steps, rec_a, rec_r = [[] for _ in range(parts)], [], []
                    with swapped(cell, dict(zip(names, values, strict=True))):
                        for j in range(k):
                            h_in = state[0] if mask is None else state[0] * mask
                            a_t, r_t = recurrent_projection(
                                a_c[j], h_in, weight, bias, cell.recurrence, sums
                            )
                            new = _as_tuple(cell.step(a_t, r_t, _as_state(state, walk.tuple_state)))
                            if keep is not None:  # zoneout: d_t * h_{t-1} + (1 - d_t) * h~_t
                                new = (torch.lerp(new[0], state[0], _keep_at(keep, j)), *new[1:])
                            state = new
                            for part, t in zip(steps, new, strict=True):
                                part.append(t)
                            rec_a.append(a_t)
                            if r_t is not None:
                                rec_r.append(r_t)
                    stacked = [torch.stack(p) for p in steps]
                    return (*stacked, torch.stack(rec_a), *([torch.stack(rec_r)] if rec_r else []))

                return flat

            runners[k] = _chunk_graph(walk, "forward", k, inputs, make).runner()
        out = runners[k](*(t for t in inputs if t is not None))
        for p in range(parts):
            states[p] = _filled(states[p], out[p], steps)
            _put_steps(states[p], out[p], start, reverse)
        state = tuple(o[-1] for o in out[:parts])
        for r in range(1 if sums else 2):
            records[r] = _filled(records[r], out[parts + r], steps)
            records[r][start:stop].copy_(out[parts + r])
    states_t = tuple(states)
    return states_t, _Tape((records[0], records[1]), states_t, chunked=True)


def _backward_chunked(ctx, a, weight_hh, tensors, states, grad_out, grad_final):
    """:func:`_backward` for a chunked tape: the reverse walk ``CHUNK_STEPS`` steps per call
    of one traced graph (``dL/dh`` through ``W_hh^T``, the step's derived vjp, zoneout),
    everything in processing order."""
    walk = ctx.walk
    cell, reverse, parts = walk.cell, walk.reverse, walk.parts
    state0, params = tensors[:parts], tensors[parts:]
    sums, diagonal = cell.sums_projections, cell.recurrence == "diagonal"
    steps, batch = a.shape[0], a.shape[1]
    lengths = ctx.saved_tensors[0]
    mask, keep = _regularisation_inputs(walk, a.dtype)
    rec_a, rec_r = ctx.tape.steps
    if grad_out is not None:
        grad_out = zero_padding(grad_out, real_steps(lengths, steps))
    last = last_step_index(lengths, steps, batch, reverse, device=a.device)
    last = steps - 1 - last if reverse else last  # each row's last step, processing order
    rows = torch.arange(batch, device=a.device)

    def injected(p: int, start: int, stop: int) -> Tensor:
        """What enters state tensor ``p`` at the chunk's steps from outside the recurrence:
        the output's gradient for h, and each final state's gradient at its row's last
        step."""
        base = None
        if p == 0 and grad_out is not None:
            base = _steps_of(grad_out, start, stop, reverse)
        g = grad_final[p]
        if g is None:
            return base if base is not None else states[p].new_zeros(stop - start, *g_shape[p])
        base = states[p].new_zeros(stop - start, *g_shape[p]) if base is None else base.clone()
        inside = ((last >= start) & (last < stop)).unsqueeze(-1)  # (N, 1)
        at = (last - start).clamp(0, stop - start - 1)  # rows outside the chunk add zeros
        return base.index_put_((at, rows), torch.where(inside, g, 0.0), accumulate=True)

    def previous(p: int, start: int, stop: int) -> Tensor:
        """``s_{t-1}`` of state tensor ``p`` at the chunk's steps."""
        if start > 0:
            return _steps_of(states[p], start - 1, stop - 1, reverse)
        return torch.cat((state0[p].unsqueeze(0), _steps_of(states[p], 0, stop - 1, reverse)))

    g_shape = [s.shape[1:] for s in states]  # each state tensor's step: (N, ...)
    later_r = torch.zeros_like(rec_a[0])
    carry = tuple(torch.zeros_like(s) for s in state0)
    grad_a: Tensor | None = None  # dL/da and dL/dr of every step, time order
    grad_r: Tensor | None = None
    grad_params: list[Tensor | None] = [None] * len(params)
    runners: dict[int, Any] = {}
    for start, stop in reversed(_chunks(steps)):
        k = stop - start
        keep_c = keep if keep is None or keep.dim() == 0 else keep[start:stop]
        r_c = None if rec_r is None else rec_r[start:stop]
        chunk = (
            rec_a[start:stop], r_c, *(previous(p, start, stop) for p in range(parts)),
            *(injected(p, start, stop) for p in range(parts)), later_r, *carry, weight_hh, mask,
            keep_c, *params,
        )  # fmt: skip
        if k not in runners:

            def make(k=k, has=tuple(t is not None for t in chunk)):
                has_r, extra = has[1], has[4 + 3 * parts : 6 + 3 * parts]
                vjp = _step_vjp(cell, walk, has_r)

                def flat(*tensors):
                    it = iter(tensors)
                    a_c = next(it)
                    r_c = next(it) if has_r else None
                    prev = tuple(next(it) for _ in range(parts))
                    inj = tuple(next(it) for _ in range(parts))
                    later_r = next(it)
                    carry = tuple(next(it) for _ in range(parts))
                    weight = next(it)
                    mask, keep = (next(it) if h else None for h in extra)
                    values = tuple(it)
                    ga_c, gr_c, found = [None] * k, [None] * k, None
                    for j in reversed(range(k)):
                        back = _recurrent_back(later_r, weight, diagonal, mask)
                        grad_state = [inj[0][j] + carry[0] + back]
                        grad_state += [inj[p][j] + carry[p] for p in range(1, parts)]
                        zoned = None
                        kj = _keep_at(keep, j)
                        if kj is not None:  # the kept units pass dL/dh_t to h_{t-1}
                            zoned = grad_state[0] * kj
                            grad_state[0] = grad_state[0] - zoned
                        record = (a_c[j], r_c[j]) if has_r else (a_c[j],)
                        previous = tuple(p[j] for p in prev)
                        out = vjp(*record, *previous, *grad_state, *values)
                        ga, gr, rest = out[0], (out[1] if has_r else out[0]), out[1 + has_r :]
                        carry = tuple(rest[:parts])
                        if zoned is not None:
                            carry = (carry[0] + zoned, *carry[1:])
                        grads = rest[parts:]
                        found = (
                            grads
                            if found is None
                            else [f + g for f, g in zip(found, grads, strict=True)]
                        )
                        ga_c[j], gr_c[j] = ga, gr
                        later_r = ga if sums else gr
                    stacked = [torch.stack(ga_c)] + ([] if sums else [torch.stack(gr_c)])
                    return (*stacked, later_r, *carry, *(found or ()))

                return flat

            runners[k] = _chunk_graph(walk, "backward", k, chunk, make).runner()
        out = runners[k](*(t for t in chunk if t is not None))
        grad_a = _filled(grad_a, out[0], steps)  # time order
        _put_steps(grad_a, out[0], start, reverse)
        if not sums:
            grad_r = _filled(grad_r, out[1], steps)
            _put_steps(grad_r, out[1], start, reverse)
        rest = out[2 - sums :]
        later_r, carry, found = rest[0], tuple(rest[1 : 1 + parts]), rest[1 + parts :]
        grad_params = [f if g is None else g + f for g, f in zip(grad_params, found, strict=True)]
    grad_r = grad_a if sums else grad_r
    return _weight_gradients(
        ctx, weight_hh, tensors, states, grad_a, grad_r, carry, grad_params, mask
    )


def _step_vjp(cell: ProjectedCell, walk: Walk, has_r: bool):
    """The vjp of ``cell.step`` on flat tensors: ``(a_t, [r_t], *s_{t-1}, *dL/ds_t, *params)
    -> (dL/da_t, [dL/dr_t], *dL/ds_{t-1}, *dL/dparams)``."""
    tuple_state, names, parts = walk.tuple_state, walk.step_names, walk.parts

    def flat(*tensors):
        primals, rest = tensors[: 1 + has_r + parts], tensors[1 + has_r + parts :]
        grad_state, values = rest[:parts], rest[parts:]

        def step(*args):
            a_t, r_t = args[0], (args[1] if has_r else None)
            state = args[1 + has_r : 1 + has_r + parts]
            with swapped(cell, dict(zip(names, args[1 + has_r + parts :], strict=True))):
                return _as_tuple(cell.step(a_t, r_t, _as_state(state, tuple_state)))

        _, pullback = torch.func.vjp(step, *primals, *values)
        return pullback(tuple(grad_state))

    return flat


def _previous(states, state0, t, reverse):
    """``s_{t-1}``: the state the step at ``t`` started from, as a tuple."""
    before = t + 1 if reverse else t - 1
    if 0 <= before < len(states[0]):
        return tuple(s[before] for s in states)
    return tuple(state0)


def _own(cell: nn.Module, names: Sequence[str], tensors: Sequence[Tensor | None]) -> bool:
    """True when ``tensors`` are ``cell``'s own parameters of those names (no cast copy)."""
    return all(_attribute(cell, n) is t for n, t in zip(names, tensors, strict=True))


def _attribute(module: nn.Module, name: str) -> Any:
    """``module``'s attribute at a dotted path (``ln_hh.weight``): a parameter's current
    tensor, a parametrization's value included."""
    return functools.reduce(getattr, name.split("."), module)


class swapped:  # noqa: N801 (a context manager, used like a function)
    """Within the block, ``cell``'s named parameters read the given tensors (``torch.func``
    style), so the walk runs on a Function's inputs, wrapped or not."""

    def __init__(self, cell: nn.Module, tensors: dict[str, Tensor | None]) -> None:
        self.cell, self.tensors = cell, tensors

    def __enter__(self):
        from torch.nn.utils.stateless import _reparametrize_module

        present = {n: t for n, t in self.tensors.items() if t is not None}
        if _own(self.cell, list(present), list(present.values())):
            self.context = contextlib.nullcontext()  # nothing to swap: the common case
        else:
            self.context = _reparametrize_module(self.cell, present)
        return self.context.__enter__()

    def __exit__(self, *exc):
        return self.context.__exit__(*exc)
