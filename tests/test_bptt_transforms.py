"""Both backends of every drop-in under what users do beyond a plain backward (issues 10, 12).

Second derivatives, ``torch.func`` transforms (vmap, ``is_grads_batched``, vectorised
Jacobians), empty batches, autocast, gradient layout, and padding that holds NaN, for
``ElmanRNN``, ``LSTM`` and ``GRU`` against ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``.
"""

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call

from seqmodels import GRU, LSTM, ElmanRNN

BACKENDS = ["bptt", "autograd"]
KINDS = {"elman": ElmanRNN, "lstm": LSTM, "gru": GRU}


@pytest.fixture(params=list(KINDS))
def kind(request):
    return request.param


def make(backend, kind="elman", **kwargs):
    torch.manual_seed(0)
    if kind != "elman":
        kwargs.pop("nonlinearity", None)
    return KINDS[kind](3, 4, backend=backend, **kwargs)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "config",
    [{}, {"num_layers": 2, "bidirectional": True}, {"nonlinearity": "relu", "bias": False}],
    ids=["plain", "deep-bi", "relu-nobias"],
)
@pytest.mark.parametrize("lengths", [None, [4, 2]], ids=["full", "padded"])
def test_gradcheck_and_gradgradcheck_float64(kind, backend, config, lengths):
    rnn = make(backend, kind, dtype=torch.float64, **config)
    names = [n for n, _ in rnn.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in rnn.parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    slots = rnn.num_layers * rnn.num_directions
    states = [torch.randn(slots, 2, 4, dtype=torch.float64, requires_grad=True)]
    if kind == "lstm":
        states.append(torch.randn(slots, 2, 4, dtype=torch.float64, requires_grad=True))

    def f(x, *rest):
        state = rest[0] if kind != "lstm" else (rest[0], rest[1])
        params = rest[len(states) :]
        kwargs = {} if lengths is None else {"lengths": lengths}
        out, final = functional_call(rnn, dict(zip(names, params, strict=True)), (x, state), kwargs)
        return out, *as_tuple(final)

    inputs = (x, *states, *params)
    assert gradcheck(f, inputs, fast_mode=True, check_batched_grad=True)
    assert gradgradcheck(f, inputs, fast_mode=True, check_batched_grad=True)
    # The slow checks (every entry of the Jacobian): all configurations for Elman, the
    # plain one for the gated modules (each costs seconds on 2 cores).
    if kind == "elman" or not config:
        assert gradcheck(f, inputs, check_batched_grad=True)
    if not config:
        assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lengths", [None, []], ids=["plain", "lengths"])
def test_batch_of_size_zero(kind, backend, lengths):
    rnn = make(backend, kind, num_layers=2, bidirectional=True)
    x = torch.randn(5, 0, 3, requires_grad=True)
    out, final = rnn(x, lengths=lengths)
    assert out.shape == (5, 0, 8) and all(s.shape == (4, 0, 4) for s in as_tuple(final))
    (out.sum() + sum(s.sum() for s in as_tuple(final))).backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in rnn.parameters())


@pytest.mark.parametrize("backend", BACKENDS)
def test_is_grads_batched_and_vectorized_jacobian_match_nn_rnn(kind, backend):
    ours = make(backend, kind, bidirectional=True, dtype=torch.float64)
    ref = ours.to_torch()
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    out, ref_out = ours(x)[0], ref(x)[0]
    basis = torch.eye(out.numel(), dtype=torch.float64).view(-1, *out.shape)[:7]
    (ours_rows,) = torch.autograd.grad(out, x, basis, is_grads_batched=True)
    (ref_rows,) = torch.autograd.grad(ref_out, x, basis, is_grads_batched=True)
    torch.testing.assert_close(ours_rows, ref_rows)

    def output(module):
        return lambda inp: module(inp)[0]

    jac = torch.autograd.functional.jacobian(output(ours), x.detach(), vectorize=True)
    ref_jac = torch.autograd.functional.jacobian(output(ref), x.detach(), vectorize=True)
    torch.testing.assert_close(jac, ref_jac)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vmap_over_inputs_and_func_grad(kind, backend):
    rnn = make(backend, kind)
    ref = rnn.to_torch()
    xs = torch.randn(5, 6, 2, 3)  # 5 independent batches
    ours = torch.func.vmap(lambda x: as_tuple(rnn(x)[1])[0])(xs)
    expected = torch.stack([as_tuple(ref(x)[1])[0] for x in xs])
    torch.testing.assert_close(ours, expected)

    params = dict(rnn.named_parameters())

    def loss(params, x):
        return functional_call(rnn, params, (x,))[0].pow(2).sum()

    grads = torch.func.grad(loss)(params, xs[0])
    ref_out = ref(xs[0])[0].pow(2).sum()
    ref_grads = torch.autograd.grad(ref_out, list(ref.parameters()))
    for (name, g), r in zip(grads.items(), ref_grads, strict=True):
        torch.testing.assert_close(g, r, msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_are_contiguous_like_nn_rnn(kind, backend):
    rnn = make(backend, kind, num_layers=2, bidirectional=True)
    out, final = rnn(torch.randn(5, 2, 3))
    loss = out.sum() + sum(s.sum() for s in as_tuple(final))
    grads = torch.autograd.grad(loss, list(rnn.parameters()))
    for (name, _), grad in zip(rnn.named_parameters(), grads, strict=True):
        assert grad.is_contiguous(), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_runs_in_the_autocast_dtype(kind, backend):
    rnn = make(backend, kind)
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, final = rnn(x)
    assert out.dtype == torch.bfloat16
    assert all(s.dtype == torch.bfloat16 for s in as_tuple(final))
    torch.testing.assert_close(out.float(), rnn(x)[0], atol=5e-2, rtol=5e-2)
    out.float().sum().backward()
    assert rnn.weight_hh_l0.grad.dtype == torch.float32


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_padding_holding_nan_or_inf_changes_nothing(kind, backend, poison):
    rnn = make(backend, kind, bidirectional=True)
    clean = torch.randn(6, 3, 3)
    lengths = [6, 2, 4]
    dirty = clean.clone()
    for n, length in enumerate(lengths):
        dirty[length:, n] = poison
    results = []
    for x in (clean, dirty):
        rnn.zero_grad()
        x = x.clone().requires_grad_(True)
        out, final = rnn(x, lengths=lengths)
        (out.sum() + sum(s.sum() for s in as_tuple(final))).backward()
        results.append((out, final, x.grad, [p.grad.clone() for p in rnn.parameters()]))
    (out_c, h_c, gx_c, gp_c), (out_d, h_d, gx_d, gp_d) = results
    torch.testing.assert_close(out_d, out_c)
    torch.testing.assert_close(h_d, h_c)
    torch.testing.assert_close(gx_d, gx_c)
    for a, b in zip(gp_d, gp_c, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b)
