"""The research cells torch lacks (LayerNorm LSTM/GRU, IndRNN) against plain loops of their
published equations, written here independently of the cells; on the engine and on the step
loop, padded, bidirectional and stacked; gradcheck and gradgradcheck in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqmodels import (
    IndRNN,
    IndRNNCell,
    LayerNormGRU,
    LayerNormGRUCell,
    LayerNormLSTM,
    LayerNormLSTMCell,
)
from seqmodels.kernels import kernel_for

pytestmark = pytest.mark.core

EPS = 1e-5


def layer_norm(x, gain, shift=None):
    """Ba et al. (2016), eq. 4: normalise over the features, then gain (and shift)."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + EPS) * gain
    return y if shift is None else y + shift


def lnlstm_reference(p, x, h, c):
    """Ba et al. (2016) §3.1 LSTM, torch's gate order i, f, g, o; x (T, I), h, c (H,)."""
    outs = []
    for x_t in x:
        gates = layer_norm(p["weight_ih"] @ x_t, p["ln_ih.weight"])
        gates = gates + layer_norm(p["weight_hh"] @ h, p["ln_hh.weight"]) + p["bias"]
        i, f, g, o = gates.chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(layer_norm(c, p["ln_c.weight"], p["ln_c.bias"]))
        outs.append(h)
    return torch.stack(outs), (h, c)


def lngru_reference(p, x, h):
    """GRU (torch's gates r, z, n) with each projection layer-normalised."""
    outs = []
    for x_t in x:
        a = layer_norm(p["weight_ih"] @ x_t, p["ln_ih.weight"]) + p["bias"]
        q = layer_norm(p["weight_hh"] @ h, p["ln_hh.weight"])
        r = torch.sigmoid(a[: len(h)] + q[: len(h)])
        z = torch.sigmoid(a[len(h) : 2 * len(h)] + q[len(h) : 2 * len(h)])
        n = torch.tanh(a[2 * len(h) :] + r * (q[2 * len(h) :] + p["bias_hn"]))
        h = (1 - z) * n + z * h
        outs.append(h)
    return torch.stack(outs), h


def indrnn_reference(act):
    """Li et al. (2018), eq. 2: h_t = act(W x_t + u * h_{t-1} + b)."""

    def run(p, x, h):
        outs = []
        for x_t in x:
            h = act(p["weight_ih"] @ x_t + p["bias_ih"] + p["weight_hh"] * h + p["bias_hh"])
            outs.append(h)
        return torch.stack(outs), h

    return run


CELLS = {
    "lnlstm": (LayerNormLSTMCell, {}, lnlstm_reference),
    "lngru": (LayerNormGRUCell, {}, lngru_reference),
    "indrnn-relu": (IndRNNCell, {}, indrnn_reference(torch.relu)),
    "indrnn-tanh": (IndRNNCell, {"nonlinearity": "tanh"}, indrnn_reference(torch.tanh)),
}
MODULES = {
    "lnlstm": (LayerNormLSTM, {}),
    "lngru": (LayerNormGRU, {}),
    "indrnn-relu": (IndRNN, {}),
    "indrnn-tanh": (IndRNN, {"nonlinearity": "tanh"}),
}


def _perturb_(module):
    """Move every LayerNorm gain and shift off 1 and 0, so the test sees them."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "ln_" in name:
                p.add_(torch.randn_like(p) * 0.3)


@pytest.mark.parametrize("backend", ["bptt", "autograd"])
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_matches_its_published_equations(name, backend):
    """One direction, padded batch: outputs, final state and every gradient against the
    reference loop run on each sequence's own real steps."""
    from seqmodels import Recurrent

    cls, options, reference = CELLS[name]
    torch.manual_seed(0)
    cell = cls(3, 5, **options).double()
    _perturb_(cell)
    lstm = name == "lnlstm"
    x = torch.randn(6, 3, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 3, 5, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, 3, 5, dtype=torch.float64, requires_grad=True)
    lengths = [6, 2, 4]
    out, state = Recurrent(cell, backend=backend)(x, (h0, c0) if lstm else h0, lengths=lengths)
    w = torch.linspace(-1, 1, 5, dtype=torch.float64)
    states = state if lstm else (state,)
    loss = (out * w).sum() + sum((s * s).sum() for s in states)
    params = dict(cell.named_parameters())
    got = torch.autograd.grad(
        loss, [x, h0, c0, *params.values()] if lstm else [x, h0, *params.values()]
    )

    ref_loss, ref_out, ref_finals = 0.0, torch.zeros_like(out), []
    for n, length in enumerate(lengths):
        init = (h0[0, n], c0[0, n]) if lstm else (h0[0, n],)
        seq_out, final = reference(params, x[:length, n], *init)
        ref_out[:length, n] = seq_out
        ref_finals.append(final if lstm else (final,))
        ref_loss = ref_loss + (seq_out * w).sum() + sum((s * s).sum() for s in ref_finals[-1])
    want = torch.autograd.grad(
        ref_loss, [x, h0, c0, *params.values()] if lstm else [x, h0, *params.values()]
    )
    torch.testing.assert_close(out, ref_out)
    for k, s in enumerate(states):
        torch.testing.assert_close(s[0], torch.stack([f[k] for f in ref_finals]))
    for g, r, label in zip(got, want, ["x", "h0", *(["c0"] if lstm else []), *params], strict=True):
        torch.testing.assert_close(g, r, msg=lambda m, label=label: f"{label}: {m}")


@pytest.mark.parametrize("name", ["lnlstm", "indrnn-relu"])
def test_bidirectional_backward_direction_is_the_reference_on_reversed_sequences(name):
    cls, options = MODULES[name]
    _, _, reference = CELLS[name]
    torch.manual_seed(1)
    model = cls(3, 4, bidirectional=True, **options).double()
    _perturb_(model)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    lengths = [5, 3]
    out, _ = model(x, lengths=lengths)
    backward_cell = model.cells()[1]
    params = dict(backward_cell.named_parameters())
    for n, length in enumerate(lengths):
        zeros = torch.zeros(4, dtype=torch.float64)
        init = (zeros, zeros) if name == "lnlstm" else (zeros,)
        seq_out, _ = reference(params, x[:length, n].flip(0), *init)
        torch.testing.assert_close(out[:length, n, 4:], seq_out.flip(0))


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("shape", ["one", "bi", "stacked"])
def test_engine_matches_the_step_loop(name, shape):
    cls, options = MODULES[name]
    kwargs = {"bidirectional": shape == "bi", "num_layers": 2 if shape == "stacked" else 1}
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    results = []
    for backend in ("bptt", "autograd"):
        torch.manual_seed(2)
        model = cls(3, 4, backend=backend, **kwargs, **options).double()
        _perturb_(model)
        inp = x.clone().requires_grad_()
        out, state = model(inp, lengths=[6, 2, 4])
        states = state if isinstance(state, tuple) else (state,)
        loss = (out * out).sum() + sum(s.sum() for s in states)
        results.append((out, *states, *torch.autograd.grad(loss, [inp, *model.parameters()])))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("backend", ["bptt", "autograd"])
@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("shape", ["one", "bi", "stacked"])
def test_gradcheck_and_gradgradcheck_in_float64(name, shape, backend):
    cls, options = MODULES[name]
    kwargs = {"bidirectional": shape == "bi", "num_layers": 2 if shape == "stacked" else 1}
    torch.manual_seed(3)
    model = cls(3, 3, backend=backend, **kwargs, **options).double()
    _perturb_(model)
    if name.startswith("indrnn-relu"):  # keep pre-activations away from relu's kink
        with torch.no_grad():
            for cell in model.cells():
                cell.bias_ih.fill_(0.5)
    assert all(kernel_for(c) is not None for c in model.cells())
    names = [n for n, _ in model.named_parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(x, *values):
        out, state = torch.func.functional_call(
            model, dict(zip(names, values, strict=True)), (x,), {"lengths": [4, 3]}
        )
        return (out, *(state if isinstance(state, tuple) else (state,)))

    inputs = (x, *(p.detach().clone().requires_grad_() for p in model.parameters()))
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)


def test_layernorm_cells_have_the_documented_parameters():
    lstm = LayerNormLSTMCell(3, 5)
    shapes = {n: tuple(p.shape) for n, p in lstm.named_parameters()}
    assert shapes == {
        "weight_ih": (20, 3),
        "weight_hh": (20, 5),
        "bias": (20,),
        "ln_ih.weight": (20,),
        "ln_hh.weight": (20,),
        "ln_c.weight": (5,),
        "ln_c.bias": (5,),
    }
    assert lstm.ln_ih.eps == lstm.ln_hh.eps == lstm.ln_c.eps == 1e-5
    assert lstm.ln_ih.bias is None and lstm.ln_hh.bias is None
    torch.testing.assert_close(lstm.ln_c.weight, torch.ones(5))
    gru = LayerNormGRUCell(3, 5, bias=False)
    assert [n for n, _ in gru.named_parameters()] == [
        "weight_ih",
        "weight_hh",
        "ln_ih.weight",
        "ln_hh.weight",
    ]
    assert IndRNNCell(3, 5).weight_hh.shape == (5,)
    assert (IndRNNCell(3, 5, recurrent_max=0.5).weight_hh <= 0.5).all()
    long_memory = IndRNN(3, 50, num_layers=2, recurrent_min=0.999).cells()
    assert all(((c.weight_hh >= 0.999) & (c.weight_hh <= 1.0)).all() for c in long_memory)


def test_the_carried_cell_state_is_not_normalised():
    """c_t = f * c_{t-1} + i * g exactly: only h's read-out goes through LN_c."""
    torch.manual_seed(4)
    cell = LayerNormLSTMCell(2, 4).double()
    x = torch.randn(3, 2, dtype=torch.float64)
    h, c = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64) * 5
    _, (_, c1) = cell(x, (h, c))
    gates = cell.project_input(x) + cell.ln_hh(h @ cell.weight_hh.t())
    i, f, g, _ = gates.chunk(4, 1)
    torch.testing.assert_close(c1, torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g))


def test_module_errors_name_what_was_expected():
    with pytest.raises(ValueError, match="nonlinearity"):
        IndRNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="recurrent_max"):
        IndRNNCell(3, 4, recurrent_max=0)
    with pytest.raises(ValueError, match=r"recurrent_min must be in \[0, recurrent_max=1.0\)"):
        IndRNNCell(3, 4, recurrent_min=1.0)
    with pytest.raises(ValueError, match="dropout"):
        LayerNormLSTM(3, 4, dropout=2.0)
    with pytest.raises(ValueError, match="torch"):
        LayerNormGRU(3, 4, backend="torch")
    with pytest.raises(ValueError, match="hidden_size"):
        LayerNormLSTM(3, 0)


def test_modules_take_packed_and_batch_first_input():
    torch.manual_seed(5)
    model = LayerNormLSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3)
    out, (h_n, c_n) = model(x, lengths=[5, 3])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, [5, 3], batch_first=True)
    out_p, (h_p, c_p) = model(packed)
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True)
    torch.testing.assert_close(padded, out)
    torch.testing.assert_close((h_p, c_p), (h_n, c_n))
    assert F.mse_loss(out[1, 3:], torch.zeros(2, 4)) == 0
