"""Weight drop, variational recurrent dropout and zoneout: exact eval-mode formulas,
training masks as the papers define them, the engine against the step loop, gradcheck."""

from __future__ import annotations

import pytest
import torch

from seqmodels import (
    ElmanCell,
    GRUCell,
    IndRNNCell,
    LayerNormGRU,
    LayerNormLSTM,
    LayerNormLSTMCell,
    LSTMCell,
    Recurrent,
    RecurrentCell,
)
from seqmodels.kernels import engine_kernel
from seqmodels.kernels.engine import swapped
from seqmodels.kernels.regularisation import Regularisation

pytestmark = pytest.mark.core

CELLS = {
    "elman": lambda: ElmanCell(3, 5),
    "lstm": lambda: LSTMCell(3, 5),
    "gru": lambda: GRUCell(3, 5),
    "lnlstm": lambda: LayerNormLSTMCell(3, 5),
    "indrnn": lambda: IndRNNCell(3, 5, nonlinearity="tanh"),
}
OPTIONS = [
    {"weight_dropout": 0.4},
    {"recurrent_dropout": 0.3},
    {"zoneout": 0.25},
    {"weight_dropout": 0.4, "recurrent_dropout": 0.3, "zoneout": 0.25},
]


def _run(layer, x, lengths=None, seed=7):
    torch.manual_seed(seed)  # the masks are drawn from here
    out, state = layer(x, lengths=lengths)
    return out, (state if isinstance(state, tuple) else (state,))


def _plain_step(cell):
    """The unregularised step, ``(x_t, state) -> (h_t, state)``."""
    return lambda x_t, state: cell(x_t, state)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o))
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_engine_matches_the_step_loop(name, options, training):
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    results = []
    for backend in ("bptt", "autograd"):
        torch.manual_seed(1)
        cell = CELLS[name]().double()
        layer = Recurrent(cell, backend=backend, **options).train(training)
        inp = x.clone().requires_grad_()
        out, states = _run(layer, inp, lengths=[6, 2, 4])
        loss = (out * out).sum() + sum(s.sum() for s in states)
        results.append((out, *states, *torch.autograd.grad(loss, [inp, *cell.parameters()])))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", list(CELLS))
def test_eval_mode_weight_and_recurrent_dropout_are_the_plain_layer(name):
    torch.manual_seed(2)
    cell = CELLS[name]()
    x = torch.randn(5, 2, 3)
    plain = Recurrent(cell).eval()
    regularised = Recurrent(cell, weight_dropout=0.5, recurrent_dropout=0.5).eval()
    for a, b in zip(_run(plain, x), _run(regularised, x), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["bptt", "autograd"])
@pytest.mark.parametrize("name", ["lstm", "gru", "lnlstm"])
def test_eval_mode_zoneout_is_the_expected_mix(name, backend):
    """h_t = p h_{t-1} + (1 - p) h~_t, with h~_t the step's own h; c is not zoned."""
    torch.manual_seed(3)
    p = 0.3
    cell = CELLS[name]().double()
    layer = Recurrent(cell, backend=backend, zoneout=p).eval()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    out, states = _run(layer, x)
    state = cell.initial_state(2, like=x)
    outs = []
    for x_t in x:
        h_new, new = cell(x_t, state)
        h_old = state if isinstance(state, torch.Tensor) else state[0]
        h = p * h_old + (1 - p) * h_new
        state = (h, *new[1:]) if isinstance(new, tuple) else h
        outs.append(h)
    torch.testing.assert_close(out, torch.stack(outs))
    want = state if isinstance(state, tuple) else (state,)
    for got, ref in zip(states, want, strict=True):
        torch.testing.assert_close(got[0], ref)


@pytest.mark.parametrize("backend", ["bptt", "autograd"])
def test_training_zoneout_keeps_units_with_the_drawn_mask(backend):
    torch.manual_seed(4)
    cell = GRUCell(3, 5).double()
    layer = Recurrent(cell, backend=backend, zoneout=0.4).train()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.manual_seed(9)
    keep = layer.regularisation(x, x.new_zeros(2, 5)).keep  # what the call below draws
    assert keep.shape == (6, 2, 5) and set(keep.unique().tolist()) <= {0.0, 1.0}
    out, _ = _run(layer, x, seed=9)
    h, outs = x.new_zeros(2, 5), []
    for t, x_t in enumerate(x):
        h = keep[t] * h + (1 - keep[t]) * cell(x_t, h)[0]
        outs.append(h)
    torch.testing.assert_close(out, torch.stack(outs))


@pytest.mark.parametrize("backend", ["bptt", "autograd"])
def test_recurrent_dropout_mask_is_one_per_sequence_constant_over_time(backend):
    torch.manual_seed(5)
    cell = LSTMCell(3, 5).double()
    p = 0.5
    layer = Recurrent(cell, backend=backend, recurrent_dropout=p).train()
    x = torch.randn(7, 4, 3, dtype=torch.float64)
    torch.manual_seed(11)
    mask = layer.regularisation(x, x.new_zeros(4, 5)).recurrent_mask
    assert mask.shape == (4, 5)
    assert set(mask.unique().tolist()) <= {0.0, 1 / (1 - p)}
    out, _ = _run(layer, x, seed=11)
    h, c = x.new_zeros(4, 5), x.new_zeros(4, 5)
    outs = []
    for x_t in x:  # the same mask at every step, on the h that W_hh reads only
        gates = x_t @ cell.weight_ih.t() + cell.bias_ih + (mask * h) @ cell.weight_hh.t()
        gates = gates + cell.bias_hh
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    torch.testing.assert_close(out, torch.stack(outs))


@pytest.mark.parametrize("backend", ["bptt", "autograd"])
def test_weight_dropout_zeroes_half_the_recurrent_gradient(backend):
    """DropConnect on a 512 x 128 W_hh: one mask per call, scaled by 1/(1-p); the gradient
    reaches the raw weight through the mask, so dropped entries get exactly zero."""
    torch.manual_seed(6)
    cell = LSTMCell(16, 128)
    assert cell.weight_hh.shape == (512, 128)
    layer = Recurrent(cell, backend=backend, weight_dropout=0.5).train()
    out, _ = layer(torch.randn(6, 8, 16))
    out.sum().backward()
    zeros = (cell.weight_hh.grad == 0).float().mean().item()
    assert 0.45 <= zeros <= 0.55, zeros
    assert "weight_hh" in dict(cell.named_parameters())  # the name is kept


def test_weight_dropout_scales_the_kept_weights():
    torch.manual_seed(7)
    cell = ElmanCell(3, 4)
    layer = Recurrent(cell, weight_dropout=0.25).train()
    torch.manual_seed(3)
    dropped = layer.dropped_weights()["weight_hh"]
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], cell.weight_hh[kept] / 0.75)


@pytest.mark.parametrize("name", ["lstm", "lnlstm", "indrnn"])
def test_regularised_engine_passes_gradcheck_and_gradgradcheck(name):
    torch.manual_seed(8)
    cell = CELLS[name]().double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.bernoulli(torch.full((2, 5), 0.7, dtype=torch.float64)) / 0.7
    keep = torch.bernoulli(torch.full((5, 2, 5), 0.3, dtype=torch.float64))
    reg = Regularisation(mask, keep)
    lengths = torch.tensor([5, 3])
    names = [n for n, _ in cell.named_parameters()]

    def run(x, h0, *values):
        state = (h0, h0 * 0.5) if name.endswith("lstm") else h0
        with swapped(cell, dict(zip(names, values, strict=True))):
            out, final = engine_kernel(cell, x, state, lengths, False, reg)
        return (out, *(final if isinstance(final, tuple) else (final,)))

    inputs = (x, h0, *(p.detach().clone().requires_grad_() for p in cell.parameters()))
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)


class _LoopCell(RecurrentCell):
    def forward(self, x_t, h):
        return h, h


@pytest.mark.parametrize("option", ["weight_dropout", "recurrent_dropout", "zoneout"])
def test_a_cell_that_cannot_take_an_option_fails_at_construction(option):
    with pytest.raises(ValueError, match=rf"{option}=0.2: _LoopCell is not a ProjectedCell"):
        Recurrent(_LoopCell(3, 3), **{option: 0.2})
    with pytest.raises(ValueError, match=rf"{option} must be a probability in \[0, 1\)"):
        Recurrent(ElmanCell(3, 3), **{option: 1.0})


def test_research_modules_take_the_regularisers():
    model = LayerNormLSTM(3, 4, num_layers=2, bidirectional=True, recurrent_dropout=0.2)
    layers = [m for m in model.modules() if isinstance(m, Recurrent)]
    assert len(layers) == 4 and all(layer.recurrent_dropout == 0.2 for layer in layers)
    assert "recurrent_dropout=0.2" in repr(model)
    gru = LayerNormGRU(3, 4, weight_dropout=0.3, zoneout=0.1).train()
    out, _ = gru(torch.randn(5, 2, 3))
    out.sum().backward()


@pytest.mark.parametrize("compiled_masks", [True, False], ids=["compiled", "bernoulli_"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masks_are_bernoulli_draws_reproducible_under_the_seed(compiled_masks, dtype):
    """The masks the layers draw (``bernoulli``: a seeded hash on the CPU where the extension
    is built, torch's ``bernoulli_`` elsewhere): the drawn fraction within 4 sigma of p, the
    value as asked, the same masks again under the same seed and different ones after it,
    and neighbouring elements uncorrelated."""
    from seqmodels.kernels import compiled
    from seqmodels.kernels.regularisation import bernoulli

    like = torch.zeros(1, dtype=dtype)
    if compiled_masks and compiled.usable(like) is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    with compiled.use_compiled(compiled_masks):
        for p in (0.1, 0.3, 0.75):
            torch.manual_seed(3)
            first = bernoulli((50, 40, 100), p, like, value=2.5)
            again = bernoulli((50, 40, 100), p, like, value=2.5)
            torch.manual_seed(3)
            same = bernoulli((50, 40, 100), p, like, value=2.5)
            assert first.dtype == dtype and first.shape == (50, 40, 100)
            assert set(first.unique().tolist()) == {0.0, 2.5}
            n = first.numel()
            drawn = (first != 0).double().mean().item()
            assert abs(drawn - p) < 4 * (p * (1 - p) / n) ** 0.5, (p, drawn)
            assert torch.equal(first, same) and not torch.equal(first, again)
            flat = (first != 0).double().flatten()
            pairs = torch.corrcoef(torch.stack([flat[:-1], flat[1:]]))[0, 1].item()
            steps = torch.corrcoef(torch.stack([flat[:-4000], flat[4000:]]))[0, 1].item()
            assert abs(pairs) < 4 / n**0.5 and abs(steps) < 4 / n**0.5, (pairs, steps)
        assert bool((bernoulli((7, 3), 1.0, like) == 1).all())
        assert bool((bernoulli((7, 3), 0.0, like) == 0).all())
