"""The BPTT engine: every cell's definition, hand-written or derived, against autograd's
step loop and gradcheck; the fast forms held to the definitions they stand for."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqmodels import (
    Bidirectional,
    ElmanCell,
    GRUCell,
    LSTMCell,
    ProjectedCell,
    Recurrent,
    Stacked,
)
from seqmodels.kernels import engine, engine_kernel, kernel_for

pytestmark = pytest.mark.core


class CIFGCell(ProjectedCell):
    """A user's cell written only as its step: coupled input and forget gates (i = 1 - f)."""

    gates = 3
    sums_projections = True

    def initial_state(self, batch_size, like):
        zeros = like.new_zeros(batch_size, self.hidden_size)
        return zeros, zeros.clone()

    def step(self, z, _, state):
        h, c = state
        f, g, o = z.chunk(3, 1)
        f = torch.sigmoid(f)
        c = f * c + (1 - f) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class PeepholeCell(ProjectedCell):
    """A step that reads a parameter of its own (diagonal peepholes) and keeps a_t and r_t
    apart: the engine must find the parameter and give it its gradient."""

    gates = 2

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.peephole = nn.Parameter(torch.randn(hidden_size) * 0.5)

    def step(self, a_t, r_t, h):
        gate, cand = (a_t + r_t).chunk(2, 1)
        gate = torch.sigmoid(gate + self.peephole * h)
        return gate * h + (1 - gate) * torch.tanh(cand)


class IndependentCell(ProjectedCell):
    """A diagonal recurrence (as IndRNN's): ``h_t = tanh(W x_t + b + w * h_{t-1})``."""

    recurrence = "diagonal"
    sums_projections = True

    def step(self, z, _, h):
        return torch.tanh(z)


def derived(cls):
    """``cls`` with its hand-written derivative hidden: the engine derives it from the step."""

    class Derived(cls):
        step_backward = ProjectedCell.step_backward

        def step(self, a_t, r_t, state):
            return cls.step_forward(self, a_t, r_t, state)[0]

    Derived.__name__ = f"Derived{cls.__name__}"
    return Derived


def on_engine(cls):
    """A subclass: it inherits the definition but not the class's fast form."""
    return type(f"Engine{cls.__name__}", (cls,), {})


CELLS = {
    "elman-tanh": lambda i, h: on_engine(ElmanCell)(i, h),
    "elman-relu": lambda i, h: on_engine(ElmanCell)(i, h, nonlinearity="relu"),
    "lstm": lambda i, h: on_engine(LSTMCell)(i, h),
    "gru": lambda i, h: on_engine(GRUCell)(i, h),
    "lstm-derived": lambda i, h: derived(LSTMCell)(i, h),
    "gru-derived": lambda i, h: derived(GRUCell)(i, h),
    "cifg": CIFGCell,
    "peephole": PeepholeCell,
    "diagonal": IndependentCell,
}


def layer(name, shape, backend, seed=0):
    """``shape``: "one" (one direction), "bi" (bidirectional) or "stacked" (two layers)."""
    torch.manual_seed(seed)

    def one(inputs):
        return Recurrent(CELLS[name](inputs, 4).double(), backend=backend)

    if shape == "one":
        return one(3)
    if shape == "bi":
        return Bidirectional(one(3), one(3))
    return Stacked([one(3), one(4)])


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("shape", ["one", "bi", "stacked"])
def test_engine_matches_the_step_loop(name, shape):
    """Outputs, final states and every gradient, padded batch, against autograd."""
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    results = []
    for backend in ("bptt", "autograd"):
        model = layer(name, shape, backend)
        inp = x.clone().requires_grad_()
        out, state = model(inp, lengths=lengths)
        states = state if isinstance(state, tuple) else (state,)
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum()
        loss = loss + sum((s * s).sum() for s in states)
        grads = torch.autograd.grad(loss, [inp, *model.parameters()])
        results.append((out, *states, *grads))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("lengths", [None, [19, 5, 12]], ids=["full", "padded"])
@pytest.mark.parametrize("name", ["cifg", "diagonal"])
def test_the_chunked_walk_across_chunks(name, lengths):
    """A derived step walks CHUNK_STEPS steps per graph: a sequence of several chunks and a
    short tail, both directions, final states ending inside different chunks, against
    autograd's step loop (values, final states, every gradient)."""
    steps = 2 * engine.CHUNK_STEPS + 3
    x = torch.randn(steps, 3, 3, dtype=torch.float64)
    lengths = None if lengths is None else torch.tensor(lengths)
    results = []
    for backend in ("bptt", "autograd"):
        torch.manual_seed(0)
        model = Bidirectional(
            Recurrent(CELLS[name](3, 4).double(), backend=backend),
            Recurrent(CELLS[name](3, 4).double(), backend=backend),
        )
        inp = x.clone().requires_grad_()
        out, state = model(inp, lengths=lengths)
        states = state if isinstance(state, tuple) else (state,)
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum()
        loss = loss + sum((s * s * 0.5).sum() for s in states)
        grads = torch.autograd.grad(loss, [inp, *model.parameters()])
        results.append((out, *states, *grads))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("shape", ["one", "bi", "stacked"])
def test_gradcheck_and_gradgradcheck_in_float64(name, shape):
    model = layer(name, shape, "bptt")
    assert kernel_for(model.cells()[0] if hasattr(model, "cells") else _first_cell(model))
    params = list(model.parameters())
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 3])

    def run(x, *values):
        names = [n for n, _ in model.named_parameters()]
        out, state = torch.func.functional_call(
            model, dict(zip(names, values, strict=True)), (x,), {"lengths": lengths}
        )
        return (out, *(state if isinstance(state, tuple) else (state,)))

    inputs = (x, *(p.detach().clone().requires_grad_() for p in params))
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)


def _first_cell(model):
    return next(m for m in model.modules() if isinstance(m, ProjectedCell))


@pytest.mark.parametrize("name", ["lstm", "gru", "elman-tanh", "elman-relu"])
def test_hand_written_derivative_equals_the_derived_one(name):
    """Each built-in step's ``step_backward`` against autograd's derivative of its step."""
    cls = type(CELLS[name](3, 4)).__mro__[1]
    torch.manual_seed(0)
    cell = cls(3, 4, **({"nonlinearity": "relu"} if name == "elman-relu" else {})).double()
    hidden = cell.gates * 4
    a_t = torch.randn(5, hidden, dtype=torch.float64, requires_grad=True)
    r_t = None if cls.sums_projections else torch.randn(5, hidden, dtype=torch.float64)
    if r_t is not None:
        r_t.requires_grad_()
    state = cell.initial_state(5, like=a_t)
    state = tuple(
        torch.randn_like(s).requires_grad_()
        for s in (state if isinstance(state, tuple) else (state,))
    )
    plain = state if len(state) > 1 else state[0]
    new, saved = cell.step_forward(a_t, r_t, plain)
    new = new if isinstance(new, tuple) else (new,)
    grads = tuple(torch.randn_like(s) for s in new)
    ga, gr, carry = cell.step_backward(grads, saved, state)
    inputs = [a_t, *([r_t] if r_t is not None else []), *state]
    want = torch.autograd.grad(new, inputs, grads, allow_unused=True)
    torch.testing.assert_close(ga, want[0])
    if r_t is not None:
        torch.testing.assert_close(gr, want[1])
    for got, expected in zip(carry, want[1 + (r_t is not None) :], strict=True):
        if got is None:
            assert expected is None or not expected.any()
        else:
            torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("cls", [ElmanCell, LSTMCell, GRUCell])
@pytest.mark.parametrize("reverse", [False, True])
def test_fast_forms_hold_to_the_definition(cls, reverse):
    """Elman's in-place walk and the LSTM/GRU compiled loops against the engine walking the
    cell's own step: values and every gradient, float32 (as users run them)."""
    torch.manual_seed(0)
    cell = cls(5, 16)
    x = torch.randn(9, 4, 5)
    state = cell.initial_state(4, like=x)
    state = (
        tuple(torch.randn_like(s) for s in state)
        if isinstance(state, tuple)
        else torch.randn_like(state)
    )
    results = []
    for kernel in (kernel_for(cell), engine_kernel):
        inp = x.clone().requires_grad_()
        out, final = kernel(cell, inp, state, None, reverse)
        finals = final if isinstance(final, tuple) else (final,)
        loss = out.sum() + sum((f * f).sum() for f in finals)
        results.append((out, *finals, *torch.autograd.grad(loss, [inp, *cell.parameters()])))
    assert kernel_for(cell) is not engine_kernel
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_a_step_that_cannot_be_traced_still_gets_its_derivative():
    """Python control flow on a tensor's value: tracing fails, autograd runs every step."""

    class Branchy(ProjectedCell):
        sums_projections = True

        def step(self, z, _, h):
            return torch.tanh(z) if bool(z.sum() > -1e9) else torch.relu(z)

    torch.manual_seed(0)
    cell = Branchy(3, 4).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    out_e, _ = Recurrent(cell, backend="bptt")(x)
    out_a, _ = Recurrent(cell, backend="autograd")(x)
    g_e = torch.autograd.grad(out_e.sum(), [x, *cell.parameters()])
    g_a = torch.autograd.grad(out_a.sum(), [x, *cell.parameters()])
    for got, want in zip(g_e, g_a, strict=True):
        torch.testing.assert_close(got, want)


def test_a_diagonal_recurrence_needs_one_gate():
    class Wide(ProjectedCell):
        recurrence = "diagonal"
        gates = 2

    with pytest.raises(ValueError, match="gates = 1"):
        Wide(3, 4)
