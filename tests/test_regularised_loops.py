"""Recurrent dropout and zoneout inside the compiled loops of the LSTM, the GRU
(csrc/gated_steps.cpp) and the Elman cell (csrc/elman_steps.cpp), held
to the engine running the same masks: outputs, final states and every gradient; padded,
reversed, split into row blocks over threads and into chunks of steps; gradcheck."""

from __future__ import annotations

import pytest
import torch
from compiled_walks import REGULARISATIONS, count_walks, regularisation, walk_and_engine

from seqmodels import ElmanCell, GRUCell, LSTMCell
from seqmodels.kernels import elman, gated, kernel_for
from seqmodels.kernels.engine import swapped

pytestmark = pytest.mark.core

DTYPES = [torch.float32, torch.float64]
CELLS = {
    "lstm": (LSTMCell, gated.CompiledLSTM, 2),
    "gru": (GRUCell, gated.CompiledGRU, 1),
    "elman-tanh": (ElmanCell, elman.ElmanBPTT, 1),
    "elman-relu": (lambda i, h: ElmanCell(i, h, nonlinearity="relu"), elman.ElmanBPTT, 1),
}


def tolerance(dtype):
    return {"atol": 2e-5, "rtol": 1e-4} if dtype == torch.float32 else {}


def make_state(parts, batch, hidden, dtype):
    state = tuple(torch.randn(batch, hidden, dtype=dtype) for _ in range(parts))
    return state if parts > 1 else state[0]


def run(fn, x, state, params):
    """``fn(x, state) -> (out, final)``; values and gradients of a loss that reads both."""
    x = x.clone().requires_grad_()
    parts = state if isinstance(state, tuple) else (state,)
    parts = tuple(p.clone().requires_grad_() for p in parts)
    out, final = fn(x, parts if len(parts) > 1 else parts[0])
    finals = final if isinstance(final, tuple) else (final,)
    loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum()
    loss = loss + sum((f * f).sum() for f in finals)
    grads = torch.autograd.grad(loss, [x, *parts, *params])
    return (out, *finals, *grads)


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("kind", REGULARISATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["padded", "reverse", "row-blocks", "2-step-chunks"])
def test_regularised_loops_hold_to_the_engine(name, kind, dtype, layout, monkeypatch, threads):
    cls, function, parts = CELLS[name]
    walks = count_walks(monkeypatch, function)
    torch.manual_seed(3)
    steps, batch, hidden = 7, 24 if layout == "row-blocks" else 5, 6
    cell = cls(4, hidden).to(dtype)
    x = torch.randn(steps, batch, 4, dtype=dtype)
    state = make_state(parts, batch, hidden, dtype)
    reg = regularisation(kind, steps, batch, hidden, dtype)
    lengths = torch.randint(1, steps + 1, (batch,)) if layout == "padded" else None
    lengths = None if lengths is None else lengths.index_fill_(0, torch.tensor([0]), steps)
    reverse = layout == "reverse"
    if layout == "row-blocks":
        threads(2)
    if layout == "2-step-chunks":
        monkeypatch.setattr(gated, "CHUNK_BYTES", 2 * batch * 4 * hidden * dtype.itemsize)
    got, want = walk_and_engine(run, cell, x, state, lengths, reverse, reg, walks)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **tolerance(dtype))


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("kind", ["both", "zoneout in eval"])
def test_gradcheck_of_a_regularised_loop(name, kind, monkeypatch):
    cls, function, parts = CELLS[name]
    walks = count_walks(monkeypatch, function)
    torch.manual_seed(9)
    cell = cls(3, 4).double()
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    state = [torch.randn(2, 4, dtype=torch.float64, requires_grad=True) for _ in range(parts)]
    weight_hh = cell.weight_hh.detach().clone().requires_grad_()
    reg = regularisation(kind, 4, 2, 4, torch.float64)
    kernel = kernel_for(cell)

    def fn(x, weight_hh, *state):
        with swapped(cell, {"weight_hh": weight_hh}):
            out, final = kernel(cell, x, tuple(state) if parts > 1 else state[0], None, False, reg)
        return (out, *(final if isinstance(final, tuple) else (final,)))

    assert torch.autograd.gradcheck(fn, (x, weight_hh, *state))
    assert walks
    assert torch.autograd.gradgradcheck(fn, (x, weight_hh, *state))


@pytest.mark.parametrize("reverse", [False, True])
def test_elman_recurrent_weight_gradient_in_chunks_of_steps(reverse, monkeypatch):
    """With recurrent dropout the Elman walk adds dL/dW_hh a chunk of steps at a time (256 KB
    of m h_{t-1} rows: 4 steps of 64 x 128 float64 here, so 10 steps make 3 chunks)."""
    walks = count_walks(monkeypatch, elman.ElmanBPTT)
    torch.manual_seed(5)
    cell = ElmanCell(8, 128).double()
    x = torch.randn(10, 64, 8, dtype=torch.float64)
    h0 = torch.randn(64, 128, dtype=torch.float64)
    reg = regularisation("both", 10, 64, 128, torch.float64)
    got, want = walk_and_engine(run, cell, x, h0, None, reverse, reg, walks)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
