"""What the tests of every compiled walk (IndRNN's, the LayerNorm LSTM's) check alike: where
the engine runs instead of the compiled walk, and that it computes the definition's values;
and the regularisers' masks they run with."""

from __future__ import annotations

import copy

import pytest
import torch

from seqmodels.kernels import compiled, engine_kernel, kernel_for
from seqmodels.kernels.regularisation import Regularisation

#: The kinds of :func:`regularisation`.
REGULARISATIONS = ["recurrent dropout", "zoneout", "zoneout in eval", "both"]


def count_walks(monkeypatch, walk: type[torch.autograd.Function]) -> list:
    """The shapes of ``a`` in each call of the compiled walk ``walk`` from now on (skips the
    test where the extension cannot be built)."""
    if compiled.usable(torch.zeros(1)) is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    calls = []
    original = walk.apply

    def counted(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(walk, "apply", counted)
    return calls


def on_engine(out: torch.Tensor) -> bool:
    return type(out.grad_fn).__name__ == "EngineBPTTBackward"


def check_the_engine_runs_where_the_walk_does_not(cell, x, state, definition, walks, monkeypatch):
    """``use_compiled(False)``, ``SEQMODELS_COMPILED=0``, autocast, a ``torch.func``
    transform, another dtype: the engine, with ``definition(x, state)``'s values
    (``(output, final_state)``); then one plain call, the compiled walk (``walks`` counts its
    calls)."""
    kernel = kernel_for(cell)
    want = definition(x, state)
    with compiled.use_compiled(False):
        out, final = kernel(cell, x, state, None, False)
    assert on_engine(out)
    torch.testing.assert_close((out, final), want)
    monkeypatch.setenv("SEQMODELS_COMPILED", "0")
    out, final = kernel(cell, x, state, None, False)
    assert on_engine(out)
    torch.testing.assert_close((out, final), want)
    monkeypatch.delenv("SEQMODELS_COMPILED")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = kernel(cell, x, state, None, False)
    assert out.dtype == torch.bfloat16 and on_engine(out)
    grad = torch.func.grad(lambda x: kernel(cell, x, state, None, False)[0].sum())(x)
    torch.testing.assert_close(grad, torch.func.grad(lambda x: definition(x, state)[0].sum())(x))
    half = copy.deepcopy(cell).to(torch.bfloat16)
    half_state = (
        state.bfloat16() if isinstance(state, torch.Tensor) else tuple(s.bfloat16() for s in state)
    )
    out, _ = kernel_for(half)(half, x.bfloat16(), half_state, None, False)
    assert on_engine(out)
    assert not walks
    out, _ = kernel(cell, x, state, None, False)
    assert not on_engine(out) and len(walks) == 1


def regularisation(kind, steps, batch, hidden, dtype):
    """Recurrent dropout's mask (scaled by 1/(1-p)) and zoneout's d, as a layer draws them."""
    mask = torch.empty(batch, hidden, dtype=dtype).bernoulli_(0.7).div_(0.7)
    keep = torch.empty(steps, batch, hidden, dtype=dtype).bernoulli_(0.3)
    return {
        "recurrent dropout": Regularisation(mask, None),
        "zoneout": Regularisation(None, keep),
        "zoneout in eval": Regularisation(None, 0.3),
        "both": Regularisation(mask, keep),
    }[kind]


def walk_and_engine(run, cell, x, state, lengths, reverse, reg, walks) -> tuple:
    """``run(fn, x, state, params)`` through the cell's kernel (which must call the compiled
    walk: ``walks`` counts it) and through the engine, with the same masks ``reg``."""
    params = list(cell.parameters())

    def bind(kernel):
        return lambda x, state: kernel(cell, x, state, lengths, reverse, reg)

    got = run(bind(kernel_for(cell)), x, state, params)
    assert walks
    return got, run(bind(engine_kernel), x, state, params)
