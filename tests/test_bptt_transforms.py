"""Both backends under what users do beyond a plain backward (issue 10).

Second derivatives, ``torch.func`` transforms (vmap, ``is_grads_batched``, vectorised
Jacobians), empty batches, autocast, gradient layout, and padding that holds NaN.
"""

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call

from seqmodels import ElmanRNN

BACKENDS = ["bptt", "autograd"]


def make(backend, **kwargs):
    torch.manual_seed(0)
    return ElmanRNN(3, 4, backend=backend, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "config",
    [{}, {"num_layers": 2, "bidirectional": True}, {"nonlinearity": "relu", "bias": False}],
    ids=["plain", "deep-bi", "relu-nobias"],
)
@pytest.mark.parametrize("lengths", [None, [4, 2]], ids=["full", "padded"])
def test_gradcheck_and_gradgradcheck_float64(backend, config, lengths):
    rnn = make(backend, dtype=torch.float64, **config)
    names = [n for n, _ in rnn.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in rnn.parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    slots = rnn.num_layers * rnn.num_directions
    h0 = torch.randn(slots, 2, 4, dtype=torch.float64, requires_grad=True)

    def f(x, h0, *params):
        kwargs = {} if lengths is None else {"lengths": lengths}
        return functional_call(rnn, dict(zip(names, params, strict=True)), (x, h0), kwargs)

    inputs = (x, h0, *params)
    assert gradcheck(f, inputs, fast_mode=True, check_batched_grad=True)
    assert gradcheck(f, inputs, check_batched_grad=True)
    assert gradgradcheck(f, inputs, fast_mode=True, check_batched_grad=True)
    if not config:  # the slow (every entry) second-order check once per backend and padding
        assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lengths", [None, []], ids=["plain", "lengths"])
def test_batch_of_size_zero(backend, lengths):
    rnn = make(backend, num_layers=2, bidirectional=True)
    x = torch.randn(5, 0, 3, requires_grad=True)
    out, h_n = rnn(x, lengths=lengths)
    assert out.shape == (5, 0, 8) and h_n.shape == (4, 0, 4)
    (out.sum() + h_n.sum()).backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in rnn.parameters())


@pytest.mark.parametrize("backend", BACKENDS)
def test_is_grads_batched_and_vectorized_jacobian_match_nn_rnn(backend):
    ours = make(backend, bidirectional=True, dtype=torch.float64)
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
def test_vmap_over_inputs_and_func_grad(backend):
    rnn = make(backend)
    ref = rnn.to_torch()
    xs = torch.randn(5, 6, 2, 3)  # 5 independent batches
    ours = torch.func.vmap(lambda x: rnn(x)[1])(xs)
    expected = torch.stack([ref(x)[1] for x in xs])
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
def test_gradients_are_contiguous_like_nn_rnn(backend):
    rnn = make(backend, num_layers=2, bidirectional=True)
    out, h_n = rnn(torch.randn(5, 2, 3))
    grads = torch.autograd.grad(out.sum() + h_n.sum(), list(rnn.parameters()))
    for (name, _), grad in zip(rnn.named_parameters(), grads, strict=True):
        assert grad.is_contiguous(), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_runs_in_the_autocast_dtype(backend):
    rnn = make(backend)
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_n = rnn(x)
    assert out.dtype == torch.bfloat16 and h_n.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), rnn(x)[0], atol=5e-2, rtol=5e-2)
    out.float().sum().backward()
    assert rnn.weight_hh_l0.grad.dtype == torch.float32


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_padding_holding_nan_or_inf_changes_nothing(backend, poison):
    rnn = make(backend, bidirectional=True)
    clean = torch.randn(6, 3, 3)
    lengths = [6, 2, 4]
    dirty = clean.clone()
    for n, length in enumerate(lengths):
        dirty[length:, n] = poison
    results = []
    for x in (clean, dirty):
        rnn.zero_grad()
        x = x.clone().requires_grad_(True)
        out, h_n = rnn(x, lengths=lengths)
        (out.sum() + h_n.sum()).backward()
        results.append((out, h_n, x.grad, [p.grad.clone() for p in rnn.parameters()]))
    (out_c, h_c, gx_c, gp_c), (out_d, h_d, gx_d, gp_d) = results
    torch.testing.assert_close(out_d, out_c)
    torch.testing.assert_close(h_d, h_c)
    torch.testing.assert_close(gx_d, gx_c)
    for a, b in zip(gp_d, gp_c, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b)
