"""IndRNN's compiled walk (seqmodels/kernels/indrnn.py, csrc/diagonal_steps.cpp) held to the
cell's definition: outputs, final states and every gradient; where it runs and where the
engine runs instead."""

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

from seqmodels import Bidirectional, IndRNNCell, Recurrent, Stacked
from seqmodels.kernels import (
    compiled,
    definition,
    engine_kernel,
    indrnn,
    kernel_for,
    run_kernel,
)
from seqmodels.kernels.engine import swapped

pytestmark = pytest.mark.core

DTYPES = [torch.float32, torch.float64]


def tolerance(dtype):
    return {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {}


@pytest.fixture
def walks(monkeypatch):
    """Calls of the compiled walk (skips where the extension cannot be built)."""
    return count_walks(monkeypatch, indrnn.DiagonalWalk)


def make_cell(nonlinearity="relu", dtype=torch.float32, bias=True, inputs=5, hidden=19):
    """Weights in (-1.1, 1.1) and random biases: units that grow, decay, change sign and die
    (relu), so every branch of the derivative is exercised. 19 units: a partial block."""
    cell = IndRNNCell(inputs, hidden, bias=bias, nonlinearity=nonlinearity).to(dtype)
    with torch.no_grad():
        cell.weight_hh.uniform_(-1.1, 1.1)
        for b in (cell.bias_ih, cell.bias_hh):
            if b is not None:
                b.normal_(0.0, 0.5)
    return cell


def run(fn, x, h0, params):
    """``fn(x, h0) -> (out, h_n)``; values and gradients of a loss that reads both."""
    x, h0 = x.clone().requires_grad_(), h0.clone().requires_grad_()
    out, h_n = fn(x, h0)
    weights = torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)
    loss = (out * weights).sum() + (h_n * h_n).sum()
    grads = torch.autograd.grad(loss, [x, h0, *params], allow_unused=True)
    return (out, h_n, *grads)


def by_definition(cell, lengths=None, reverse=False):
    def fn(x, h0):
        weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        return definition(cell, x, (h0,), weights, lengths, reverse)

    return fn


def by_kernel(cell, kernel, lengths=None, reverse=False):
    return lambda x, h0: kernel(cell, x, h0, lengths, reverse)


def assert_all_close(got, want, dtype):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if g is not None:
            torch.testing.assert_close(g, w, **tolerance(dtype))


def test_the_compiled_walk_is_indrnns_kernel():
    assert kernel_for(IndRNNCell(3, 4)) is indrnn.indrnn_cell_kernel
    subclass = type("MyIndRNN", (IndRNNCell,), {})
    assert kernel_for(subclass(3, 4)) is engine_kernel  # it may change the step


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_holds_to_the_definition(walks, nonlinearity, dtype, reverse, bias):
    torch.manual_seed(0)
    cell = make_cell(nonlinearity, dtype, bias)
    x, h0 = torch.randn(13, 4, 5, dtype=dtype), torch.randn(4, 19, dtype=dtype)
    params = list(cell.parameters())
    got = run(by_kernel(cell, kernel_for(cell), reverse=reverse), x, h0, params)
    assert walks, "the compiled walk did not run"
    want = run(by_definition(cell, reverse=reverse), x, h0, params)
    assert_all_close(got, want, dtype)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_padded_batch_holds_to_the_definition(walks, nonlinearity, dtype):
    """Per-sequence lengths: zero outputs and no gradient through padding, the final state
    and its gradient at each sequence's own last step; NaN in padding reaches nothing."""
    torch.manual_seed(1)
    cell = make_cell(nonlinearity, dtype)
    lengths = torch.tensor([9, 1, 5, 9, 3])
    x, h0 = torch.randn(9, 5, 5, dtype=dtype), torch.randn(5, 19, dtype=dtype)
    for n, length in enumerate(lengths):
        x[length:, n] = float("nan")
    params = list(cell.parameters())
    got = run(by_kernel(cell, kernel_for(cell), lengths), x, h0, params)
    assert walks
    want = run(by_definition(cell, lengths), x, h0, params)
    assert_all_close(got, want, dtype)
    out = got[0]
    for n, length in enumerate(lengths):
        assert not out[length:, n].any()
    assert all(torch.isfinite(t).all() for t in got)


def test_unused_outputs_and_an_expanded_gradient(walks):
    """Only ``h_n`` used (no gradient of the output), only the output used (no ``dL/dh_n``),
    and ``out.sum()`` (a gradient expanded from one value, read with stride 0)."""
    torch.manual_seed(2)
    cell = make_cell("tanh")
    x = torch.randn(7, 3, 5, requires_grad=True)
    params = [x, *cell.parameters()]
    losses = {
        "h_n": lambda out, h_n: h_n.sum(),
        "out": lambda out, h_n: (out * out).sum(),
        "sum": lambda out, h_n: out.sum(),
    }
    h0 = torch.zeros(3, 19)
    for name, loss in losses.items():
        got = torch.autograd.grad(loss(*kernel_for(cell)(cell, x, h0, None, False)), params)
        want = torch.autograd.grad(loss(*by_definition(cell)(x, h0)), params)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4, msg=name)
    assert len(walks) == len(losses)


def layers(shape, nonlinearity, dtype):
    torch.manual_seed(3)

    def cell(size):
        return make_cell(nonlinearity, dtype, inputs=size)

    model = Stacked.from_cell(cell, 5, 2, bidirectional=shape == "stacked-bi")
    if shape == "bi":
        model = Bidirectional(cell(5), cell(5))
    for module in model.modules():
        if isinstance(module, Recurrent):
            module.backend = "bptt"
    return model


@pytest.mark.parametrize("shape", ["bi", "stacked", "stacked-bi"])
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padded", [False, True])
def test_layers_match_the_engine(walks, shape, nonlinearity, dtype, padded):
    """Bidirectional and stacked layers (packed input too): the compiled walk against the
    engine walking the definition (``use_compiled(False)``)."""
    model = layers(shape, nonlinearity, dtype)
    x = torch.randn(8, 4, 5, dtype=dtype)
    lengths = torch.tensor([8, 3, 6, 1])
    results = []
    for enabled in (True, False):
        inp = x.clone().requires_grad_()
        feed = inp
        if padded:
            feed = torch.nn.utils.rnn.pack_padded_sequence(inp, lengths, enforce_sorted=False)
        with compiled.use_compiled(enabled):
            out, h_n = model(feed)
        if padded:
            out = torch.nn.utils.rnn.pad_packed_sequence(out)[0]
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=dtype)).sum() + (h_n**2).sum()
        results.append((out, h_n, *torch.autograd.grad(loss, [inp, *model.parameters()])))
        if enabled:
            calls = len(walks)
    assert calls == (4 if shape == "stacked-bi" else 2) and len(walks) == calls
    assert_all_close(*results, dtype)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck_through_the_compiled_walk(walks, nonlinearity, reverse):
    torch.manual_seed(4)
    cell = make_cell(nonlinearity, torch.float64, hidden=6)
    x = torch.randn(5, 2, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    weights = [getattr(cell, n).detach().clone().requires_grad_() for n in names]

    def fn(x, h0, *weights):
        return run_kernel(cell, x, h0, dict(zip(names, weights, strict=True)), None, reverse)

    assert torch.autograd.gradcheck(fn, (x, h0, *weights), check_batched_grad=True)
    assert walks
    # Double backward: the vjp of the engine's out-of-place walk.
    assert torch.autograd.gradgradcheck(fn, (x, h0, *weights))


@pytest.mark.parametrize("kind", REGULARISATIONS)
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_regularised_walks_hold_to_the_engine(walks, kind, nonlinearity, dtype, reverse):
    """The masks a layer drew, applied inside the compiled walk: the engine's values and
    gradients (padded too)."""
    torch.manual_seed(8)
    cell = make_cell(nonlinearity, dtype)
    x, h0 = torch.randn(9, 20, 5, dtype=dtype), torch.randn(20, 19, dtype=dtype)
    reg = regularisation(kind, 9, 20, 19, dtype)
    lengths = None if reverse else torch.tensor([9, 1, 5, 9, 3] * 4)
    got, want = walk_and_engine(run, cell, x, h0, lengths, reverse, reg, walks)
    assert_all_close(got, want, dtype)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_gradcheck_of_a_regularised_walk(walks, nonlinearity):
    torch.manual_seed(9)
    cell = make_cell(nonlinearity, torch.float64, hidden=4)
    x = torch.randn(4, 2, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    weight_hh = cell.weight_hh.detach().clone().requires_grad_()
    reg = regularisation("both", 4, 2, 4, torch.float64)

    kernel = kernel_for(cell)

    def fn(x, h0, weight_hh):
        with swapped(cell, {"weight_hh": weight_hh}):
            return kernel(cell, x, h0, None, False, reg)

    assert torch.autograd.gradcheck(fn, (x, h0, weight_hh))
    assert walks
    assert torch.autograd.gradgradcheck(fn, (x, h0, weight_hh))


def test_the_engine_runs_where_the_compiled_walk_does_not(walks, monkeypatch):
    torch.manual_seed(5)
    cell = make_cell("relu")
    x, h0 = torch.randn(6, 3, 5), torch.randn(3, 19)
    check_the_engine_runs_where_the_walk_does_not(
        cell, x, h0, by_definition(cell), walks, monkeypatch
    )
