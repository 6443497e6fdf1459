"""The LayerNorm LSTM's compiled walk (seqmodels/kernels/layernorm.py, csrc/layernorm_steps.cpp)
held to the cell's definition: outputs, final states and every gradient; where it runs and
where the engine runs instead."""

from __future__ import annotations

import pytest
import torch
from compiled_walks import (
    REGULARISATIONS,
    check_the_engine_runs_where_the_walk_does_not,
    count_walks,
    regularisation,
    walk_and_engine,
)

from seqmodels import Bidirectional, LayerNormLSTMCell, Recurrent, Stacked
from seqmodels.kernels import compiled, definition, engine_kernel, kernel_for, run_kernel
from seqmodels.kernels import layernorm as kernel_module

pytestmark = pytest.mark.core

DTYPES = [torch.float32, torch.float64]


def tolerance(dtype, want):
    """float32: the compiled walk and the engine both differ from float64 arithmetic by
    rounding that grows with a gradient's sums, so the absolute tolerance scales with it."""
    if dtype != torch.float32:
        return {}
    return {"atol": 2e-5 * max(1.0, want.abs().max().item()), "rtol": 1e-4}


@pytest.fixture
def walks(monkeypatch):
    """Calls of the compiled walk (skips where the extension cannot be built)."""
    return count_walks(monkeypatch, kernel_module.LayerNormLSTMWalk)


def make_cell(dtype=torch.float32, bias=True, inputs=5, hidden=11):
    """Every LayerNorm gain and shift away from its initial 1 and 0, so each one's gradient
    path is exercised."""
    cell = LayerNormLSTMCell(inputs, hidden, bias=bias).to(dtype)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if name.startswith("ln_") else 0.1))
    return cell


def run(fn, x, state, params):
    """``fn(x, (h0, c0)) -> (out, (h_n, c_n))``; values and gradients of a loss reading all."""
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    out, (h_n, c_n) = fn(x, state)
    weights = torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)
    loss = (out * weights).sum() + (h_n * h_n).sum() + c_n.sin().sum()
    grads = torch.autograd.grad(loss, [x, *state, *params], allow_unused=True)
    return (out, h_n, c_n, *grads)


def by_definition(cell, lengths=None, reverse=False):
    def fn(x, state):
        weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        out, h_n, c_n = definition(cell, x, state, weights, lengths, reverse)
        return out, (h_n, c_n)

    return fn


def by_kernel(cell, lengths=None, reverse=False):
    return lambda x, state: kernel_for(cell)(cell, x, state, lengths, reverse)


def assert_all_close(got, want, dtype):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if g is not None:
            torch.testing.assert_close(g, w, **tolerance(dtype, w))


def inputs(steps, batch, hidden=11, dtype=torch.float32):
    x = torch.randn(steps, batch, 5, dtype=dtype)
    return x, (torch.randn(batch, hidden, dtype=dtype), torch.randn(batch, hidden, dtype=dtype))


def test_the_compiled_walk_is_the_cells_kernel():
    assert kernel_for(LayerNormLSTMCell(3, 4)) is kernel_module.layernorm_lstm_cell_kernel
    subclass = type("MyLayerNormLSTM", (LayerNormLSTMCell,), {})
    assert kernel_for(subclass(3, 4)) is engine_kernel  # it may change the step


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_holds_to_the_definition(walks, dtype, reverse, bias):
    torch.manual_seed(0)
    cell = make_cell(dtype, bias)
    x, state = inputs(9, 4, dtype=dtype)
    params = list(cell.parameters())
    got = run(by_kernel(cell, reverse=reverse), x, state, params)
    assert walks, "the compiled walk did not run"
    want = run(by_definition(cell, reverse=reverse), x, state, params)
    assert_all_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_split_over_threads_and_chunks_of_steps(walks, dtype, monkeypatch):
    """Enough rows for two threads' blocks (each with its own parameter-gradient sums) and
    ``dL/dW_hh`` added every 3 steps over 10 (a partial last chunk)."""
    torch.manual_seed(1)
    cell = make_cell(dtype, hidden=13)
    x, state = inputs(10, 37, hidden=13, dtype=dtype)
    width = 37 * 4 * 13 * x.element_size()
    monkeypatch.setattr(kernel_module, "CHUNK_BYTES", 3 * width)
    params = list(cell.parameters())
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = run(by_kernel(cell), x, state, params)
    finally:
        torch.set_num_threads(threads)
    assert walks
    want = run(by_definition(cell), x, state, params)
    assert_all_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_padded_batch_holds_to_the_definition(walks, dtype):
    """Per-sequence lengths: zero outputs and no gradient through padding, the final states
    and their gradients at each sequence's own last step; NaN in padding reaches nothing."""
    torch.manual_seed(2)
    cell = make_cell(dtype)
    lengths = torch.tensor([9, 1, 5, 9, 3])
    x, state = inputs(9, 5, dtype=dtype)
    for n, length in enumerate(lengths):
        x[length:, n] = float("nan")
    params = list(cell.parameters())
    got = run(by_kernel(cell, lengths), x, state, params)
    assert walks
    want = run(by_definition(cell, lengths), x, state, params)
    assert_all_close(got, want, dtype)
    out = got[0]
    for n, length in enumerate(lengths):
        assert not out[length:, n].any()
    assert all(torch.isfinite(t).all() for t in got)


def test_unused_outputs_and_an_expanded_gradient(walks):
    """Only one final state used, only the output, and ``out.sum()`` (a gradient expanded
    from one value, read with stride 0)."""
    torch.manual_seed(3)
    cell = make_cell()
    x = torch.randn(7, 3, 5, requires_grad=True)
    params = [x, *cell.parameters()]
    losses = {
        "h_n": lambda out, s: s[0].sum(),
        "c_n": lambda out, s: s[1].sum(),
        "out": lambda out, s: (out * out).sum(),
        "sum": lambda out, s: out.sum(),
    }
    state = (torch.zeros(3, 11), torch.zeros(3, 11))
    for name, loss in losses.items():
        got = torch.autograd.grad(loss(*by_kernel(cell)(x, state)), params)
        want = torch.autograd.grad(loss(*by_definition(cell)(x, state)), params)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, **tolerance(g.dtype, w), msg=name)
    assert len(walks) == len(losses)


def test_a_second_backward_through_the_graph(walks):
    """Backward writes dL/da over its saved normalised inputs; ``retain_graph=True`` and a
    second backward recomputes them and gives the same gradients."""
    torch.manual_seed(4)
    cell = make_cell(torch.float64)
    x = torch.randn(6, 4, 5, dtype=torch.float64, requires_grad=True)
    out, (h_n, c_n) = Recurrent(cell)(x)
    loss = out.square().sum() + c_n.sum()
    params = [x, *cell.parameters()]
    first = torch.autograd.grad(loss, params, retain_graph=True)
    second = torch.autograd.grad(loss, params)
    assert walks
    torch.testing.assert_close(first, second)


def layers(shape, dtype):
    torch.manual_seed(5)

    def cell(size):
        return make_cell(dtype, inputs=size)

    model = Stacked.from_cell(cell, 5, 2, bidirectional=shape == "stacked-bi")
    if shape == "bi":
        model = Bidirectional(cell(5), cell(5))
    for module in model.modules():
        if isinstance(module, Recurrent):
            module.backend = "bptt"
    return model


@pytest.mark.parametrize("shape", ["bi", "stacked", "stacked-bi"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padded", [False, True])
def test_layers_match_the_engine(walks, shape, dtype, padded):
    """Bidirectional and stacked layers (packed input too): the compiled walk against the
    engine walking the definition (``use_compiled(False)``)."""
    model = layers(shape, dtype)
    x = torch.randn(8, 4, 5, dtype=dtype)
    lengths = torch.tensor([8, 3, 6, 1])
    results = []
    for enabled in (True, False):
        inp = x.clone().requires_grad_()
        feed = inp
        if padded:
            feed = torch.nn.utils.rnn.pack_padded_sequence(inp, lengths, enforce_sorted=False)
        with compiled.use_compiled(enabled):
            out, (h_n, c_n) = model(feed)
        if padded:
            out = torch.nn.utils.rnn.pad_packed_sequence(out)[0]
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=dtype)).sum() + (h_n**2).sum()
        loss = loss + c_n.sum()
        results.append((out, h_n, c_n, *torch.autograd.grad(loss, [inp, *model.parameters()])))
        if enabled:
            calls = len(walks)
    assert calls == (4 if shape == "stacked-bi" else 2) and len(walks) == calls
    assert_all_close(*results, dtype)


@pytest.mark.parametrize("kind", REGULARISATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_regularised_walks_hold_to_the_engine(walks, kind, dtype, reverse):
    """The masks a layer drew, applied inside the compiled walk: the engine's values and
    gradients (padded too), and the engine's definition of them."""
    torch.manual_seed(8)
    cell = make_cell(dtype)
    x, state = inputs(9, 20, dtype=dtype)
    reg = regularisation(kind, 9, 20, 11, dtype)
    lengths = None if reverse else torch.tensor([9, 1, 5, 9, 3] * 4)
    got, want = walk_and_engine(run, cell, x, state, lengths, reverse, reg, walks)
    assert_all_close(got, want, dtype)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck_through_the_compiled_walk(walks, reverse):
    torch.manual_seed(6)
    cell = make_cell(torch.float64, hidden=4)
    x = torch.randn(4, 2, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in cell.named_parameters()]
    weights = [p.detach().clone().requires_grad_() for p in cell.parameters()]

    def fn(x, h0, c0, *weights):
        out, (h_n, c_n) = run_kernel(
            cell, x, (h0, c0), dict(zip(names, weights, strict=True)), None, reverse
        )
        return out, h_n, c_n

    assert torch.autograd.gradcheck(fn, (x, h0, c0, *weights), check_batched_grad=True)
    assert walks
    # Double backward: the vjp of the engine's out-of-place walk.
    assert torch.autograd.gradgradcheck(fn, (x, h0, c0, *weights))


def test_gradcheck_of_a_regularised_walk(walks):
    torch.manual_seed(9)
    cell = make_cell(torch.float64, hidden=4)
    x = torch.randn(4, 2, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    reg = regularisation("both", 4, 2, 4, torch.float64)
    kernel = kernel_for(cell)

    def fn(x, h0, c0):
        out, (h_n, c_n) = kernel(cell, x, (h0, c0), None, False, reg)
        return out, h_n, c_n

    assert torch.autograd.gradcheck(fn, (x, h0, c0))
    assert walks
    assert torch.autograd.gradgradcheck(fn, (x, h0, c0))


def test_the_engine_runs_where_the_compiled_walk_does_not(walks, monkeypatch):
    torch.manual_seed(7)
    cell = make_cell()
    x, state = inputs(6, 3)
    check_the_engine_runs_where_the_walk_does_not(
        cell, x, state, by_definition(cell), walks, monkeypatch
    )
