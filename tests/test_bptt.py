"""The hand-written BPTT backend: gradcheck in float64, agreement with autograd, edge cases."""

import pytest
import torch
from kernel_functions import elman_bptt
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence

from seqmodels import ElmanRNN

LENGTHS = [3, 5, 1]


@pytest.mark.parametrize("mode", ["plain", "lengths", "packed"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_gradcheck_float64(nonlinearity, bias, num_layers, bidirectional, mode):
    rnn = ElmanRNN(
        3,
        4,
        num_layers,
        nonlinearity,
        bias,
        bidirectional=bidirectional,
        dtype=torch.float64,
        backend="bptt",
    )
    names = [n for n, _ in rnn.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in rnn.parameters()]
    x = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(
        num_layers * (2 if bidirectional else 1), 3, 4, dtype=torch.float64, requires_grad=True
    )

    def f(x, h0, *params):
        weights = dict(zip(names, params, strict=True))
        if mode == "packed":
            out, h_n = functional_call(
                rnn, weights, (pack_padded_sequence(x, LENGTHS, enforce_sorted=False), h0)
            )
            return out.data, h_n
        kwargs = {"lengths": LENGTHS} if mode == "lengths" else {}
        return functional_call(rnn, weights, (x, h0), kwargs)

    assert torch.autograd.gradcheck(f, (x, h0, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_bptt_equals_autograd_with_dropout_between_layers(nonlinearity):
    auto = ElmanRNN(
        4, 6, 3, nonlinearity, dropout=0.3, bidirectional=True, batch_first=True, backend="autograd"
    )
    bptt = ElmanRNN(
        4, 6, 3, nonlinearity, dropout=0.3, bidirectional=True, batch_first=True, backend="bptt"
    )
    bptt.load_state_dict(auto.state_dict())
    x = torch.randn(3, 7, 4, requires_grad=True)
    results = []
    for model in (auto, bptt):
        torch.manual_seed(123)  # the same dropout masks for both
        out, h = model(x, lengths=[7, 2, 5])
        grads = torch.autograd.grad(out.pow(2).sum() + h.sum(), [x, *model.parameters()])
        results.append((out, h, grads))
    (out_a, h_a, g_a), (out_b, h_b, g_b) = results
    torch.testing.assert_close(out_b, out_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h_b, h_a, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    torch.manual_seed(0)
    assert not torch.allclose(auto(x)[0], auto(x)[0]), "dropout is active in training"


def test_no_grad_inference_builds_no_graph():
    rnn = ElmanRNN(3, 5, 2, backend="bptt")
    x = torch.randn(6, 2, 3)
    with torch.no_grad():
        out, h = rnn(x)
    assert out.grad_fn is None and h.grad_fn is None
    out_grad, h_grad = rnn(x)
    assert out_grad.grad_fn is not None
    torch.testing.assert_close(out, out_grad.detach())


def test_double_backward_matches_autograd():
    """create_graph=True through the hand-written backward: a gradient penalty's gradient."""
    torch.manual_seed(0)
    grads = {}
    x = torch.randn(4, 2, 3)
    for backend in ("bptt", "autograd"):
        torch.manual_seed(1)
        rnn = ElmanRNN(3, 5, backend=backend)
        out, _ = rnn(x)
        (g,) = torch.autograd.grad(out.pow(2).sum(), rnn.weight_hh_l0, create_graph=True)
        grads[backend] = torch.autograd.grad(g.pow(2).sum(), rnn.weight_ih_l0)[0]
    torch.testing.assert_close(grads["bptt"], grads["autograd"])


def test_only_final_state_used():
    """Gradient that enters only through h_n (no output loss) is handled (grad_output is None)."""
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h0 = torch.zeros(2, 4, dtype=torch.float64, requires_grad=True)
    w_ih = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w_hh = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([2, 5])
    assert torch.autograd.gradcheck(
        lambda h0, a, b: elman_bptt(x, h0, a, b, None, None, "tanh", lengths)[1], (h0, w_ih, w_hh)
    )


@pytest.mark.parametrize("backend", ["autograd", "bptt"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_long_sequence_trains_with_finite_gradients(backend, nonlinearity):
    rnn = ElmanRNN(2, 8, nonlinearity=nonlinearity, backend=backend, init="orthogonal")
    x = torch.randn(5000, 2, 2)
    out, h = rnn(x)
    loss = out[-1].pow(2).sum() + out.mean()
    loss.backward()
    for name, p in rnn.named_parameters():
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("backend", ["autograd", "bptt"])
def test_relu_padding_junk_never_leaks(backend):
    """Huge values in padded steps of a ReLU net may overflow there; nothing may leak out."""
    rnn = ElmanRNN(2, 4, nonlinearity="relu", backend=backend, init="identity")
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(50)
    x = torch.rand(40, 2, 2)
    x[3:] = 1e30  # 3 and 4 real steps, then absurd padding that overflows to inf/nan
    x.requires_grad_(True)
    out, h = rnn(x, lengths=[3, 4])
    ref_out, ref_h = rnn(x[:3, :1].detach())
    torch.testing.assert_close(out[:3, 0], ref_out[:, 0])
    torch.testing.assert_close(h[0, 0], ref_h[0, 0])
    assert torch.all(out[3:, 0] == 0) and torch.all(out[4:, 1] == 0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.all(x.grad[4:] == 0)
    assert all(torch.isfinite(p.grad).all() for p in rnn.parameters())
