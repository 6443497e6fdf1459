"""The engine's compiled steps (kernels/compiled_step.py): a cell written only as its step,
traced and compiled by Inductor, computes what its step loop computes; ``auto`` compiles
only hot signatures; ``0`` never compiles."""

from __future__ import annotations

import pytest
import torch

from seqmodels import LayerNormGRU, LayerNormLSTM
from seqmodels.kernels import compiled, compiled_step, engine

pytestmark = pytest.mark.core


@pytest.fixture(autouse=True)
def on_the_engine():
    """The LayerNorm LSTM has a compiled C++ walk of its own (kernels/layernorm.py): off here,
    so both cells run the engine's traced steps."""
    with compiled.use_compiled(False):
        yield


def _run(model, x, lengths):
    out, state = model(x, lengths=lengths)
    states = state if isinstance(state, tuple) else (state,)
    loss = (out * out).sum() + sum(s.sum() for s in states)
    return (out, *states, *torch.autograd.grad(loss, [x, *model.parameters()]))


def _graphs(model):
    return [g for cell in model.cells() for g in engine._DERIVED.get(cell, {}).values()]


@pytest.mark.parametrize("cls", [LayerNormLSTM, LayerNormGRU])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_compiled_steps_match_the_step_loop(cls, dtype, monkeypatch):
    monkeypatch.setenv("SEQMODELS_COMPILE_STEPS", "1")
    results = []
    for backend in ("bptt", "autograd"):
        torch.manual_seed(0)
        model = cls(3, 5, bidirectional=True, backend=backend).to(dtype)
        x = torch.randn(6, 3, 3, dtype=dtype, requires_grad=True)
        results.append(_run(model, x, [6, 2, 4]))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)


def test_auto_compiles_a_signature_once_it_is_hot(monkeypatch):
    monkeypatch.setenv("SEQMODELS_COMPILE_STEPS", "auto")
    torch.manual_seed(1)
    model = LayerNormLSTM(3, 4, backend="bptt")
    x = torch.randn(5, 2, 3, requires_grad=True)
    reference = LayerNormLSTM(3, 4, backend="autograd")
    reference.load_state_dict(model.state_dict())
    want = _run(reference, x, None)
    for call in range(1, compiled_step.HOT_CALLS + 1):
        got = _run(model, x, None)
        graphs = _graphs(model)
        assert len(graphs) == 2  # the forward step and its derivative
        hot = call >= compiled_step.HOT_CALLS
        assert all((g.compiled is not None) == hot for g in graphs), call
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b)


def test_zero_never_compiles(monkeypatch):
    monkeypatch.setenv("SEQMODELS_COMPILE_STEPS", "0")
    model = LayerNormGRU(3, 4, backend="bptt")
    x = torch.randn(5, 2, 3, requires_grad=True)
    for _ in range(compiled_step.HOT_CALLS + 1):
        _run(model, x, None)
    graphs = _graphs(model)
    assert len(graphs) == 1 and graphs[0].compiled is None  # the derivative, traced only


def test_a_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("SEQMODELS_COMPILE_STEPS", "yes")
    with pytest.raises(ValueError, match="SEQMODELS_COMPILE_STEPS must be 0, 1 or auto"):
        compiled_step.setting()


@pytest.mark.parametrize("options", [{}, {"recurrent_dropout": 0.3, "zoneout": 0.2}])
def test_chunked_walks_over_several_chunks_match_the_step_loop(options, monkeypatch):
    """T = 2 chunks + a shorter one, both directions, padded, regularised in training."""
    monkeypatch.setenv("SEQMODELS_COMPILE_STEPS", "auto")  # float64: traced, not compiled
    steps = 2 * engine.CHUNK_STEPS + 3
    x = torch.randn(steps, 3, 3, dtype=torch.float64)
    lengths = [steps, 5, steps - 2]
    results = []
    for backend in ("bptt", "autograd"):
        torch.manual_seed(0)
        model = LayerNormLSTM(3, 4, bidirectional=True, backend=backend, **options).double()
        torch.manual_seed(1)  # the same masks on both paths
        results.append(_run(model, x.clone().requires_grad_(), lengths))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)
