"""The compiled forms as ``torch.library`` custom ops: what ``torch.compile`` and
``torch.export`` see of the Elman, LSTM, GRU and IndRNN kernels.

Dynamo cannot trace into the C++ extension (:mod:`~seqmodels.kernels.compiled`): eager
calls it from ``autograd.Function``s (:class:`~seqmodels.kernels.gated.CompiledLSTM`,
:class:`~seqmodels.kernels.gated.CompiledGRU`,
:class:`~seqmodels.kernels.elman.ElmanBPTT`, IndRNN's
:class:`~seqmodels.kernels.indrnn.DiagonalWalk`, whose input projection stays in the graph).
Inside a traced program each of those runs
as two custom ops instead, joined by registered autograd:

* ``seqmodels::<cell>`` returns the outputs and what backward reads (the LSTM's cell
  states and gates, ...): the Function's own ``forward``;
* ``seqmodels::<cell>_backward`` returns the gradients: the Function's own ``backward``
  on a plain context (:class:`_Context`).

So each compiled form has one implementation, which eager and traced programs share; this
module adds only signatures, fake implementations (the shapes) and the glue. An LSTM call
that needs no gradient runs ``seqmodels::lstm_inference``
(:func:`~seqmodels.kernels.lstm_inference.lstm_inference`), as in eager.

A gradient not asked for comes back from a ``_backward`` op as an empty placeholder (an
op cannot return ``None``); the autograd glue turns it into ``None``. Recurrent dropout's
mask and zoneout's ``d`` are optional inputs, as the loops read them
(:func:`~seqmodels.kernels.regularisation.loop_inputs`).

Limits of a traced program (eager has none of them): its backward is not differentiable
again (``create_graph=True``), and ``torch.func`` transforms of it are not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import torch
from torch import Tensor

from seqmodels.cells.elman import ElmanCell
from seqmodels.cells.gated import GRUCell, LSTMCell
from seqmodels.cells.indrnn import IndRNNCell
from seqmodels.kernels import compiled, lstm_inference
from seqmodels.kernels.elman import ElmanBPTT, elman_cell_kernel, keeps_htilde
from seqmodels.kernels.gated import CompiledGRU, CompiledLSTM, gru_cell_kernel, lstm_cell_kernel
from seqmodels.kernels.indrnn import DiagonalWalk, indrnn_cell_kernel, project
from seqmodels.kernels.regularisation import Regularisation, loop_inputs

Optional = Tensor | None


class _Context:
    """What a Function's ``setup_context`` and ``backward`` use of ``ctx``, and no more."""

    def __init__(self, needs: Sequence[bool]) -> None:
        self.needs_input_grad = tuple(needs)

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        pass

    def set_materialize_grads(self, value: bool) -> None:
        pass


def _regularisation(mask: Optional, keep: Optional) -> Regularisation | None:
    if mask is None and keep is None:
        return None
    return Regularisation(mask, keep)


def _no_gradient(like: Tensor) -> Tensor:
    """The placeholder for a gradient not asked for."""
    return like.new_empty(0)


def _gradients(grads: Sequence[Optional], inputs: Sequence[Optional], needs: Sequence[bool]):
    """A ``_backward`` op's results: each gradient asked for (zeros where the Function
    found none), a placeholder for the rest; no two results share memory."""
    results, seen = [], set()
    for g, t, need in zip(grads, inputs, needs, strict=True):
        if not need or t is None:
            results.append(_no_gradient(inputs[0]))
            continue
        g = torch.zeros_like(t) if g is None else g
        if id(g) in seen:  # one sum can serve two biases; an op's outputs may not alias
            g = g.clone()
        seen.add(id(g))
        results.append(g)
    return tuple(results)


def _function_backward(function, tensors, options, outputs, grads, needs):
    """``function``'s own ``backward`` on a plain context: ``setup_context`` with the op's
    ``tensors`` (the differentiable inputs), its non-tensor ``options`` and the forward's
    ``outputs``, then the gradients of ``tensors`` as a ``_backward`` op returns them."""
    ctx = _Context((*needs, *([False] * len(options))))
    function.setup_context(ctx, (*tensors, *options), outputs)
    with torch.no_grad():
        found = function.backward(ctx, *grads)[: len(tensors)]
    return _gradients(found, tensors, needs)


def _fake_gradients(inputs: Sequence[Optional], needs: Sequence[bool]):
    return tuple(
        torch.empty_like(t) if need and t is not None else _no_gradient(inputs[0])
        for t, need in zip(inputs, needs, strict=True)
    )


def _as_grads(grads: Sequence[Tensor], needs: Sequence[bool]) -> list[Tensor | None]:
    return [g if need else None for g, need in zip(grads, needs, strict=True)]


def _zeros_for_none(grads: Sequence[Optional], outputs: Sequence[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(o) if g is None else g for g, o in zip(grads, outputs, strict=True)]


def _steps(x: Tensor, weight_hh: Tensor, width: int = 1) -> Tensor:
    """An empty ``(T, N, width * H)`` like the loops' per-step buffers."""
    return x.new_empty(x.shape[0], x.shape[1], width * weight_hh.shape[1])


def _state(x: Tensor, weight_hh: Tensor) -> Tensor:
    return x.new_empty(x.shape[1], weight_hh.shape[1])


# --- LSTM --------------------------------------------------------------------------------------


@torch.library.custom_op("seqmodels::lstm", mutates_args=())
def lstm(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional,
    bias_hh: Optional,
    lengths: Optional,
    reverse: bool,
    mask: Optional,
    keep: Optional,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:class:`~seqmodels.kernels.gated.CompiledLSTM`'s forward: ``(output (T, N, H),
    h_n, c_n, cell states (T, N, H), gates (T, N, 4H))``."""
    tensors = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    reg = _regularisation(mask, keep)
    with torch.no_grad():
        return CompiledLSTM.forward(*tensors, None, lengths, reverse, reg)


@lstm.register_fake
def _(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse, mask, keep):
    out, state = _steps(x, weight_hh), _state(x, weight_hh)
    return out, state, torch.empty_like(state), torch.empty_like(out), _steps(x, weight_hh, 4)


@torch.library.custom_op("seqmodels::lstm_backward", mutates_args=())
def lstm_backward(
    grad_out: Tensor,
    grad_h_n: Tensor,
    grad_c_n: Tensor,
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional,
    bias_hh: Optional,
    lengths: Optional,
    reverse: bool,
    mask: Optional,
    keep: Optional,
    out: Tensor,
    cells: Tensor,
    gates: Tensor,
    needs: list[bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:class:`~seqmodels.kernels.gated.CompiledLSTM`'s backward: the gradients of ``x``,
    ``h0``, ``c0`` and the four weights, where ``needs`` asks for them."""
    tensors = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    options = (None, lengths, reverse, _regularisation(mask, keep))
    outputs, grads = (out, None, None, cells, gates), (grad_out, grad_h_n, grad_c_n, None, None)
    return _function_backward(CompiledLSTM, tensors, options, outputs, grads, needs)


@lstm_backward.register_fake
def _(grad_out, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, b_ih, b_hh, *rest):
    return _fake_gradients((x, h0, c0, w_ih, w_hh, b_ih, b_hh), rest[-1])


def _lstm_setup(ctx, inputs, output) -> None:
    *tensors, lengths, reverse, mask, keep = inputs
    out, _, _, cells, gates = output
    ctx.reverse = reverse
    ctx.save_for_backward(*tensors, lengths, mask, keep, out, cells, gates)


def _lstm_autograd(ctx, grad_out, grad_h_n, grad_c_n, _grad_cells, _grad_gates):
    *tensors, lengths, mask, keep, out, cells, gates = ctx.saved_tensors
    needs = list(ctx.needs_input_grad[:7])
    grads = _zeros_for_none((grad_out, grad_h_n, grad_c_n), (out, tensors[1], tensors[2]))
    results = lstm_backward(
        *grads, *tensors, lengths, ctx.reverse, mask, keep, out, cells, gates, needs
    )
    return (*_as_grads(results, needs), None, None, None, None)


lstm.register_autograd(_lstm_autograd, setup_context=_lstm_setup)


@torch.library.custom_op("seqmodels::lstm_inference", mutates_args=())
def lstm_forward_only(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional,
    bias_hh: Optional,
    lengths: Optional,
    reverse: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`~seqmodels.kernels.lstm_inference.lstm_inference`: ``(output, h_n, c_n)``,
    for a call that no gradient will reach."""
    out, h_n, c_n = lstm_inference.lstm_inference(
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse
    )
    return out, h_n, c_n.clone() if c_n is c0 else c_n  # an op's output may not be an input


@lstm_forward_only.register_fake
def _(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse):
    state = _state(x, weight_hh)
    return _steps(x, weight_hh), state, torch.empty_like(state)


# --- GRU ---------------------------------------------------------------------------------------


@torch.library.custom_op("seqmodels::gru", mutates_args=())
def gru(
    x: Tensor,
    h0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional,
    bias_hh: Optional,
    lengths: Optional,
    reverse: bool,
    mask: Optional,
    keep: Optional,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:class:`~seqmodels.kernels.gated.CompiledGRU`'s forward: ``(output (T, N, H), h_n,
    gates (T, N, 3H), W_hn h_{t-1} + b_hn (T, N, H))``."""
    tensors = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    with torch.no_grad():
        return CompiledGRU.forward(*tensors, None, lengths, reverse, _regularisation(mask, keep))


@gru.register_fake
def _(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse, mask, keep):
    out = _steps(x, weight_hh)
    return out, _state(x, weight_hh), _steps(x, weight_hh, 3), torch.empty_like(out)


@torch.library.custom_op("seqmodels::gru_backward", mutates_args=())
def gru_backward(
    grad_out: Tensor,
    grad_h_n: Tensor,
    x: Tensor,
    h0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional,
    bias_hh: Optional,
    lengths: Optional,
    reverse: bool,
    mask: Optional,
    keep: Optional,
    out: Tensor,
    gates: Tensor,
    hidden_n: Tensor,
    needs: list[bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:class:`~seqmodels.kernels.gated.CompiledGRU`'s backward: the gradients of ``x``,
    ``h0`` and the four weights, where ``needs`` asks for them."""
    tensors = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    options = (None, lengths, reverse, _regularisation(mask, keep))
    outputs, grads = (out, None, gates, hidden_n), (grad_out, grad_h_n, None, None)
    return _function_backward(CompiledGRU, tensors, options, outputs, grads, needs)


@gru_backward.register_fake
def _(grad_out, grad_h_n, x, h0, w_ih, w_hh, b_ih, b_hh, *rest):
    return _fake_gradients((x, h0, w_ih, w_hh, b_ih, b_hh), rest[-1])


def _gru_setup(ctx, inputs, output) -> None:
    *tensors, lengths, reverse, mask, keep = inputs
    out, _, gates, hidden_n = output
    ctx.reverse = reverse
    ctx.save_for_backward(*tensors, lengths, mask, keep, out, gates, hidden_n)


def _gru_autograd(ctx, grad_out, grad_h_n, _grad_gates, _grad_hidden_n):
    *tensors, lengths, mask, keep, out, gates, hidden_n = ctx.saved_tensors
    needs = list(ctx.needs_input_grad[:6])
    grads = _zeros_for_none((grad_out, grad_h_n), (out, tensors[1]))
    results = gru_backward(
        *grads, *tensors, lengths, ctx.reverse, mask, keep, out, gates, hidden_n, needs
    )
    return (*_as_grads(results, needs), None, None, None, None)


gru.register_autograd(_gru_autograd, setup_context=_gru_setup)


# --- Elman -------------------------------------------------------------------------------------


def _elman_cell(relu: bool) -> SimpleNamespace:
    """What :class:`~seqmodels.kernels.elman.ElmanBPTT` reads of its cell."""
    return SimpleNamespace(nonlinearity="relu" if relu else "tanh")


def _keeps_htilde(x: Tensor, keep: Optional) -> bool:
    """Whether ElmanBPTT keeps each step's ``h~``: on the compiled walk only."""
    return keeps_htilde(keep) and compiled.available(x.device.type, x.dtype)


@torch.library.custom_op("seqmodels::elman", mutates_args=())
def elman(
    x: Tensor,
    h0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional,
    bias_hh: Optional,
    lengths: Optional,
    reverse: bool,
    relu: bool,
    mask: Optional,
    keep: Optional,
) -> tuple[Tensor, Tensor, Tensor]:
    """:class:`~seqmodels.kernels.elman.ElmanBPTT`'s forward: ``(output (T, N, H), h_n,
    each step's h~ (T, N, H), or a placeholder where it keeps none)``."""
    tensors = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    reg = _regularisation(mask, keep)
    with torch.no_grad():
        out, h_n, htilde = ElmanBPTT.forward(*tensors, _elman_cell(relu), lengths, reverse, reg)
    return out, h_n, _no_gradient(x) if htilde is None else htilde


@elman.register_fake
def _(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse, relu, mask, keep):
    out = _steps(x, weight_hh)
    htilde = torch.empty_like(out) if _keeps_htilde(x, keep) else _no_gradient(x)
    return out, _state(x, weight_hh), htilde


@torch.library.custom_op("seqmodels::elman_backward", mutates_args=())
def elman_backward(
    grad_out: Tensor,
    grad_h_n: Tensor,
    x: Tensor,
    h0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional,
    bias_hh: Optional,
    lengths: Optional,
    reverse: bool,
    relu: bool,
    mask: Optional,
    keep: Optional,
    out: Tensor,
    htilde: Tensor,
    needs: list[bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:class:`~seqmodels.kernels.elman.ElmanBPTT`'s backward: the gradients of ``x``,
    ``h0`` and the four weights, where ``needs`` asks for them."""
    tensors = (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    options = (_elman_cell(relu), lengths, reverse, _regularisation(mask, keep))
    outputs = (out, None, htilde if htilde.numel() else None)
    grads = (grad_out, grad_h_n, None)
    return _function_backward(ElmanBPTT, tensors, options, outputs, grads, needs)


@elman_backward.register_fake
def _(grad_out, grad_h_n, x, h0, w_ih, w_hh, b_ih, b_hh, *rest):
    return _fake_gradients((x, h0, w_ih, w_hh, b_ih, b_hh), rest[-1])


def _elman_setup(ctx, inputs, output) -> None:
    *tensors, lengths, reverse, relu, mask, keep = inputs
    out, _, htilde = output
    ctx.reverse, ctx.relu = reverse, relu
    ctx.save_for_backward(*tensors, lengths, mask, keep, out, htilde)


def _elman_autograd(ctx, grad_out, grad_h_n, _grad_htilde):
    *tensors, lengths, mask, keep, out, htilde = ctx.saved_tensors
    needs = list(ctx.needs_input_grad[:6])
    grads = _zeros_for_none((grad_out, grad_h_n), (out, tensors[1]))
    results = elman_backward(
        *grads, *tensors, lengths, ctx.reverse, ctx.relu, mask, keep, out, htilde, needs
    )
    return (*_as_grads(results, needs), None, None, None, None, None)


elman.register_autograd(_elman_autograd, setup_context=_elman_setup)


# --- IndRNN ------------------------------------------------------------------------------------


def _diagonal_walk(relu: bool, reverse: bool, mask: Optional, keep: Optional) -> SimpleNamespace:
    """What :class:`~seqmodels.kernels.indrnn.DiagonalWalk` reads of its walk."""
    cell = SimpleNamespace(nonlinearity="relu" if relu else "tanh")
    return SimpleNamespace(cell=cell, reverse=reverse, regularisation=_regularisation(mask, keep))


@torch.library.custom_op("seqmodels::indrnn", mutates_args=())
def indrnn(
    a: Tensor,
    weight_hh: Tensor,
    h0: Tensor,
    lengths: Optional,
    last: Tensor,
    reverse: bool,
    relu: bool,
    mask: Optional,
    keep: Optional,
) -> tuple[Tensor, Tensor]:
    """:class:`~seqmodels.kernels.indrnn.DiagonalWalk`'s forward from the input projection
    ``a`` ``(T, N, H)``: ``(output (T, N, H), h_n)``."""
    walk = _diagonal_walk(relu, reverse, mask, keep)
    with torch.no_grad():
        return DiagonalWalk.forward(a, weight_hh, h0, walk, lengths, last)


@indrnn.register_fake
def _(a, weight_hh, h0, lengths, last, reverse, relu, mask, keep):
    return torch.empty_like(a), torch.empty_like(h0)


@torch.library.custom_op("seqmodels::indrnn_backward", mutates_args=())
def indrnn_backward(
    grad_out: Tensor,
    grad_h_n: Tensor,
    a: Tensor,
    weight_hh: Tensor,
    h0: Tensor,
    lengths: Optional,
    last: Tensor,
    reverse: bool,
    relu: bool,
    mask: Optional,
    keep: Optional,
    out: Tensor,
    needs: list[bool],
) -> tuple[Tensor, Tensor, Tensor]:
    """:class:`~seqmodels.kernels.indrnn.DiagonalWalk`'s backward: the gradients of ``a``,
    ``w_hh`` and ``h0``, where ``needs`` asks for them."""
    tensors = (a, weight_hh, h0)
    options = (_diagonal_walk(relu, reverse, mask, keep), lengths, last)
    grads = (grad_out, grad_h_n)
    return _function_backward(DiagonalWalk, tensors, options, (out, None), grads, needs)


@indrnn_backward.register_fake
def _(grad_out, grad_h_n, a, weight_hh, h0, *rest):
    return _fake_gradients((a, weight_hh, h0), rest[-1])


def _indrnn_setup(ctx, inputs, output) -> None:
    a, weight_hh, h0, lengths, last, reverse, relu, mask, keep = inputs
    ctx.reverse, ctx.relu = reverse, relu
    ctx.save_for_backward(a, weight_hh, h0, lengths, last, mask, keep, output[0])


def _indrnn_autograd(ctx, grad_out, grad_h_n):
    a, weight_hh, h0, lengths, last, mask, keep, out = ctx.saved_tensors
    needs = list(ctx.needs_input_grad[:3])
    grads = _zeros_for_none((grad_out, grad_h_n), (out, h0))
    options = (lengths, last, ctx.reverse, ctx.relu, mask, keep)
    results = indrnn_backward(*grads, a, weight_hh, h0, *options, out, needs)
    return (*_as_grads(results, needs), None, None, None, None, None, None)


indrnn.register_autograd(_indrnn_autograd, setup_context=_indrnn_setup)


# --- the kernels a traced program runs ---------------------------------------------------------


def applies(*tensors: Optional, anywhere: bool = False) -> bool:
    """True when an op takes these tensors in a traced program: one device and dtype, no
    autocast, and (unless ``anywhere``) the compiled loops built for them: CPU, float32 or
    float64. The eager kernel runs everything else."""
    present = [t for t in tensors if t is not None]
    first = present[0]
    if torch.is_autocast_enabled(first.device.type):
        return False
    if any(t.dtype != first.dtype or t.device != first.device for t in present):
        return False
    return anywhere or compiled.available(first.device.type, first.dtype)


def _needs_grad(tensors: Sequence[Optional]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def lstm_kernel(
    cell: LSTMCell,
    x: Tensor,
    state: tuple[Tensor, Tensor],
    lengths: Optional,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """:func:`~seqmodels.kernels.gated.lstm_cell_kernel` as custom ops."""
    h0, c0 = state
    tensors = (x, h0, c0, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if not applies(*tensors):
        return lstm_cell_kernel(cell, x, state, lengths, reverse, regularisation)
    if regularisation is None and not _needs_grad(tensors):
        out, h_n, c_n = lstm_forward_only(*tensors, lengths, reverse)
    else:
        out, h_n, c_n, _, _ = lstm(*tensors, lengths, reverse, *loop_inputs(regularisation, h0))
    return out, (h_n, c_n)


def gru_kernel(
    cell: GRUCell,
    x: Tensor,
    state: Tensor,
    lengths: Optional,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`~seqmodels.kernels.gated.gru_cell_kernel` as custom ops."""
    tensors = (x, state, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if not applies(*tensors):
        return gru_cell_kernel(cell, x, state, lengths, reverse, regularisation)
    out, h_n, _, _ = gru(*tensors, lengths, reverse, *loop_inputs(regularisation, state))
    return out, h_n


def elman_kernel(
    cell: ElmanCell,
    x: Tensor,
    state: Tensor,
    lengths: Optional,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`~seqmodels.kernels.elman.elman_cell_kernel` as custom ops."""
    tensors = (x, state, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    # Its in-place walk runs on any device; the masks need the compiled one.
    if not applies(*tensors, anywhere=regularisation is None):
        return elman_cell_kernel(cell, x, state, lengths, reverse, regularisation)
    relu = cell.nonlinearity == "relu"
    masks = loop_inputs(regularisation, state)
    out, h_n, _ = elman(*tensors, lengths, reverse, relu, *masks)
    return out, h_n


def indrnn_kernel(
    cell: IndRNNCell,
    x: Tensor,
    state: Tensor,
    lengths: Optional,
    reverse: bool,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`~seqmodels.kernels.indrnn.indrnn_cell_kernel` as custom ops."""
    weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if (reverse and lengths is not None) or not applies(x, state, *weights):
        return indrnn_cell_kernel(cell, x, state, lengths, reverse, regularisation)
    a, last = project(cell, x, lengths, reverse)
    relu = cell.nonlinearity == "relu"
    masks = loop_inputs(regularisation, state)
    return indrnn(a, cell.weight_hh, state, lengths, last, reverse, relu, *masks)


for _kernel in (lstm_kernel, gru_kernel, elman_kernel, indrnn_kernel):
    _kernel.takes_regularisation = True  # type: ignore[attr-defined]
