"""PyTorch's own tests of ``nn.RNN``, ported to run against ``ElmanRNN`` (issue 10).

Every test keeps its upstream name and cites its source: ``test/test_nn.py`` (TestNN,
TestNNDeviceType) or ``test/test_modules.py`` run over the ``nn.RNN`` entry of
``torch/testing/_internal/common_modules.py`` (``module_inputs_torch_nn_RNN_GRU``,
``module_error_inputs_torch_nn_RNN_GRU``). Each is parametrized over
``impl in ["nn.RNN", "bptt", "autograd"]``: ``nn.RNN`` itself is the control and must pass too.
Upstream tests that exercise torch internals are not ported; ``docs/elman_rnn_contract.md``
lists them with the reason, and holds the error-type table that ``test_errors`` enforces.

Sizes are the upstream ones where they are small, reduced otherwise (noted per test).
"""

from __future__ import annotations

import contextlib
import copy
import io
import pickle
import re
import warnings
from itertools import product

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck
from torch.nn.utils import rnn as rnn_utils

from seqmodels import ElmanRNN
from seqmodels.diagnostics.precision import exact_float32 as no_tf32  # TF32 off, restored

IMPLS = ["nn.RNN", "bptt", "autograd", "torch", "auto"]
CUDA = torch.cuda.is_available()
gpu = [
    pytest.mark.gpu,
    pytest.mark.skipif(not CUDA, reason="needs a CUDA device"),
]


def make(impl: str, *args, **kwargs) -> nn.Module:
    """nn.RNN or ElmanRNN on one backend, from the same constructor arguments."""
    if impl == "nn.RNN":
        return nn.RNN(*args, **kwargs)
    return ElmanRNN(*args, backend=impl, **kwargs)


@pytest.fixture(params=IMPLS)
def impl(request) -> str:
    return request.param


@contextlib.contextmanager
def default_dtype(dtype):
    """upstream ``@set_default_dtype``."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def assert_equal(a, b, **kw):
    torch.testing.assert_close(a, b, **kw)


def assert_not_equal(a, b):
    assert a.shape != b.shape or not torch.allclose(a, b)


# --------------------------------------------------------------------------------------
# test/test_nn.py :: TestNN
# --------------------------------------------------------------------------------------


def test_rnn_args_check(impl):
    """test/test_nn.py::TestNN::test_rnn_args_check (mode 'RNN')."""
    input_size, hidden_size, num_layers, batch_size, seq_len, num_directions = 3, 5, 2, 4, 6, 1
    bad_size = 7

    def test(input_shape, hidden_shape):
        model = make(impl, input_size, hidden_size, num_layers)
        input, hidden = torch.randn(input_shape), torch.randn(hidden_shape)
        with pytest.raises(RuntimeError):
            model(input, hidden)

    correct_input_shape = (seq_len, batch_size, input_size)
    correct_hidden_shape = (num_layers * num_directions, batch_size, hidden_size)

    def update_shape(shape, dim, new_dim_size):
        new_shape = list(shape)
        new_shape[dim] = new_dim_size
        return tuple(new_shape)

    test(update_shape(correct_input_shape, 1, bad_size), correct_hidden_shape)  # input batch
    test(correct_input_shape, update_shape(correct_hidden_shape, 1, bad_size))  # hidden batch
    test(update_shape(correct_input_shape, 2, bad_size), correct_hidden_shape)  # input size
    test(correct_input_shape, update_shape(correct_hidden_shape, 2, bad_size))  # hidden size
    test(correct_input_shape, update_shape(correct_hidden_shape, 0, bad_size))  # hidden[0]


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_rnn_check_device(impl):
    """test/test_nn.py::TestNN::test_rnn_check_device (mode 'RNN'; upstream needs 2 GPUs
    only for the LSTM case, so one GPU suffices here)."""
    input_size, hidden_size, num_layers, batch_size, seq_len = 3, 5, 2, 4, 6
    model = make(impl, input_size, hidden_size, num_layers)
    model_cuda = copy.deepcopy(model).to("cuda:0")
    input = torch.randn(seq_len, batch_size, input_size)
    hidden = torch.randn(num_layers, batch_size, hidden_size)
    with pytest.raises(
        RuntimeError, match="Input and parameter tensors are not at the same device"
    ):
        model(input.to("cuda:0"))
    with pytest.raises(
        RuntimeError, match="Input and parameter tensors are not at the same device"
    ):
        model_cuda(input)
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same device"):
        model(input, hidden.to("cuda:0"))
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same device"):
        model_cuda(input.to("cuda:0"), hidden)


def test_rnn_initial_hidden_state(impl):
    """test/test_nn.py::TestNN::test_rnn_initial_hidden_state (mode 'RNN'; batch 32 -> 4)."""
    rnn = make(impl, 30, 20, 2)
    input = torch.randn(10, 4, 30)
    hidden = torch.zeros(2, 4, 20)
    output1, hidden1 = rnn(input, hidden)
    output2, hidden2 = rnn(input)
    assert_equal(output1, output2)
    assert_equal(hidden1, hidden2)


def test_projections_errors_on_gru_and_rnn(impl):
    """test/test_nn.py::TestNN::test_projections_errors_on_gru_and_rnn (mode 'RNN')."""
    error_msg = "proj_size argument is only supported for LSTM, not RNN or GRU"
    with pytest.raises(ValueError, match=error_msg):
        make(impl, 30, 20, 2, proj_size=10)


def _test_RNN_cpu_vs_cudnn(impl, dropout, dtype=torch.double, device="cpu"):
    """test/test_nn.py::TestNN::_test_RNN_cpu_vs_cudnn, the nn.RNN part.

    Upstream runs the same weights on CPU and on cuDNN; here the reference is ``nn.RNN`` on
    the CPU and the other side is ``impl`` on ``device`` (the CPU, or CUDA with TF32 off).
    """

    def forward_backward(cuda, rnn, input_val, grad_output, weights_val, hx_val, grad_hy):
        for x_layer, y_layer in zip(rnn.all_weights, weights_val, strict=True):
            for x, y in zip(x_layer, y_layer, strict=True):
                x.data.copy_(y.data)
        if isinstance(input_val, rnn_utils.PackedSequence):
            input = rnn_utils.PackedSequence(
                input_val.data.data.requires_grad_(True), input_val.batch_sizes
            )
            input_var = input.data
        else:
            input = input_val.clone().requires_grad_(True)
            input_var = input
        hx = hx_val.clone().requires_grad_(True)
        if cuda:
            rnn.to(device)
            input_var.data = input_var.data.to(device)
            hx.data = hx.data.to(device)
            grad_hy = grad_hy.to(device)
            grad_output = grad_output.to(device)
        output, hy = rnn(input, hx)
        if isinstance(output, rnn_utils.PackedSequence):
            output = output.data
        torch.autograd.backward([output, hy], [grad_output, grad_hy])
        return {
            "output": output.data,
            "hy": hy.data,
            "weights": rnn.all_weights,
            "grad_input": input_var.grad.data,
            "grad_hx": hx.grad.data,
        }

    input_size, hidden_size, num_layers, seq_length, batch = 10, 6, 2, 7, 6

    def make_noncontig(tensor):
        ndim = tensor.dim()
        return torch.stack([tensor.clone().zero_(), tensor], ndim).select(ndim, 1)

    def compare_cpu_gpu(outputs_cpu, outputs_gpu):
        assert list(outputs_cpu.keys()) == list(outputs_gpu.keys())
        for key in outputs_cpu:
            if key != "weights":
                assert_equal(outputs_cpu[key], outputs_gpu[key].cpu(), atol=5e-5, rtol=0)
        for cpu_layer, gpu_layer in zip(
            outputs_cpu["weights"], outputs_gpu["weights"], strict=True
        ):
            for cpu_weight, gpu_weight in zip(cpu_layer, gpu_layer, strict=True):
                assert_equal(cpu_weight.grad.data, gpu_weight.grad.data.cpu(), atol=5e-5, rtol=0)

    def build(module_impl, **kwargs):
        return make(module_impl, input_size, hidden_size, num_layers, **kwargs).to(dtype)

    for bias, bidirectional, batch_first, contig, variable_len, lens_as_tensor in product(
        (True, False), repeat=6
    ):
        num_directions = 2 if bidirectional else 1
        if batch_first:
            input_val = torch.randn(batch, seq_length, input_size, dtype=dtype)
            grad_output = torch.randn(batch, seq_length, hidden_size * num_directions, dtype=dtype)
        else:
            input_val = torch.randn(seq_length, batch, input_size, dtype=dtype)
            grad_output = torch.randn(seq_length, batch, hidden_size * num_directions, dtype=dtype)
        hx_val = torch.randn(num_layers * num_directions, batch, hidden_size, dtype=dtype)
        grad_hy = torch.randn(num_layers * num_directions, batch, hidden_size, dtype=dtype)
        if not contig:
            grad_output = make_noncontig(grad_output)
            grad_hy = make_noncontig(grad_hy)
            input_val = make_noncontig(input_val)  # upstream assigns to an unused name
            hx_val = make_noncontig(hx_val)
        if variable_len:
            lengths = [7, 5, 5, 2, 1, 1]
            if lens_as_tensor:
                lengths = torch.tensor(lengths, dtype=torch.long)
            input_val = rnn_utils.pack_padded_sequence(input_val, lengths, batch_first=batch_first)
            grad_output = rnn_utils.pack_padded_sequence(
                grad_output, lengths, batch_first=batch_first
            ).data
        kwargs = dict(
            bias=bias, dropout=dropout, bidirectional=bidirectional, batch_first=batch_first
        )
        rnn = build("nn.RNN", **kwargs)
        outputs_cpu = forward_backward(
            False, rnn, input_val, grad_output, rnn.all_weights, hx_val, grad_hy
        )
        rnn_gpu = build(impl, **kwargs)
        outputs_gpu = forward_backward(
            device != "cpu", rnn_gpu, input_val, grad_output, rnn.all_weights, hx_val, grad_hy
        )
        compare_cpu_gpu(outputs_cpu, outputs_gpu)

    num_directions = 1
    for nonlinearity in ("tanh", "relu"):
        hx_val = torch.randn(num_layers, batch, hidden_size, dtype=dtype)
        input_val = torch.randn(seq_length, batch, input_size, dtype=dtype)
        grad_output = torch.randn(seq_length, batch, hidden_size * num_directions, dtype=dtype)
        grad_hy = torch.randn(num_layers * num_directions, batch, hidden_size, dtype=dtype)
        rnn = build("nn.RNN", bias=bias, nonlinearity=nonlinearity)
        outputs_cpu = forward_backward(
            False, rnn, input_val, grad_output, rnn.all_weights, hx_val, grad_hy
        )
        rnn_gpu = build(impl, bias=bias, nonlinearity=nonlinearity)
        outputs_gpu = forward_backward(
            device != "cpu", rnn_gpu, input_val, grad_output, rnn.all_weights, hx_val, grad_hy
        )
        compare_cpu_gpu(outputs_cpu, outputs_gpu)


def test_RNN_cpu_vs_cudnn_no_dropout(impl):
    """test/test_nn.py::TestNN::test_RNN_cpu_vs_cudnn_no_dropout, as CPU parity with nn.RNN."""
    _test_RNN_cpu_vs_cudnn(impl, 0, torch.double)


def test_RNN_cpu_vs_cudnn_with_dropout(impl):
    """test/test_nn.py::TestNN::test_RNN_cpu_vs_cudnn_with_dropout (dropout=1, deterministic)."""
    _test_RNN_cpu_vs_cudnn(impl, 1)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dropout", [0, 1])
def test_RNN_cpu_vs_cudnn_cuda(impl, dropout):
    """test/test_nn.py::TestNN::test_RNN_cpu_vs_cudnn_{no,with}_dropout on CUDA: ``impl`` on
    the GPU (cuDNN for nn.RNN) against nn.RNN on the CPU, float64 as upstream."""
    with no_tf32():
        _test_RNN_cpu_vs_cudnn(impl, dropout, torch.double, device="cuda")


@pytest.mark.parametrize("cuda", [False, pytest.param(True, marks=gpu)])
def test_RNN_dropout(impl, cuda):
    """test/test_nn.py::TestNN::test_RNN_dropout (upstream skips without cuDNN; the CPU half
    runs everywhere, the CUDA half on a GPU)."""
    device = "cuda" if cuda else "cpu"
    with default_dtype(torch.double):
        for p in (0, 0.276, 0.731, 1):
            for train in (True, False):
                rnn = make(impl, 10, 1000, 2, bias=False, dropout=p, nonlinearity="relu")
                rnn.to(device)
                rnn.train(train)
                with torch.no_grad():
                    rnn.weight_ih_l0.data.fill_(1)
                    rnn.weight_hh_l0.data.fill_(1)
                    rnn.weight_ih_l1.data.fill_(1)
                    rnn.weight_hh_l1.data.fill_(1)
                input = torch.ones(1, 1, 10, device=device)
                hx = torch.zeros(2, 1, 1000, device=device)
                output, hy = rnn(input, hx)
                assert output.data.min() == output.data.max()
                output_val = output.data[0][0][0]
                if p == 0 or not train:
                    assert output_val == 10000
                elif p == 1:
                    assert output_val == 0
                else:
                    assert 8000 < output_val < 12000
                    denorm_mod = (output_val * (1 - p)) % 10
                    assert min(denorm_mod, 10 - denorm_mod) < 1e-2
                assert hy[0].data.min() == hy[0].data.max()
                assert hy[1].data.min() == hy[1].data.max()
                assert hy.data[0][0][0] == 10
                assert hy.data[1][0][0] == output_val


@pytest.mark.parametrize("cuda", [False, pytest.param(True, marks=gpu)])
def test_error_RNN_seq_len_zero(impl, cuda):
    """test/test_nn.py::TestNN::test_error_RNN_seq_len_zero (mode 'RNN')."""
    device = "cuda" if cuda else "cpu"
    with default_dtype(torch.double):
        for bidirectional in (True, False):
            input = torch.ones(0, 10, 5, device=device)
            rnn = make(impl, 5, 6, bidirectional=bidirectional).to(device)
            with pytest.raises(
                RuntimeError, match="Expected sequence length to be larger than 0 in RNN"
            ):
                rnn(input)


@pytest.mark.parametrize("cuda", [False, pytest.param(True, marks=gpu)])
def test_RNN_input_size_zero(impl, cuda):
    """test/test_nn.py::TestNN::test_RNN_input_size_zero (mode 'RNN'): batch of size 0."""
    device = "cuda" if cuda else "cpu"
    input = torch.zeros((5, 0, 3), device=device)
    rnn = make(impl, input_size=3, hidden_size=4).to(device)
    outs = rnn(input)
    assert outs[0].shape == torch.Size([5, 0, 4])
    outs[0].sum().backward()  # backward does not cause a hard error


@pytest.mark.parametrize("cuda", [False, pytest.param(True, marks=gpu)])
def test_RNN_dropout_state(impl, cuda):
    """test/test_nn.py::TestNN::test_RNN_dropout_state (torch.save/torch.load the module)."""
    device = "cuda" if cuda else "cpu"
    for p in (0, 0.1234):
        for train in (True, False):
            rnn = make(impl, 100, 100, 2, bias=False, dropout=p, nonlinearity="relu")
            rnn.to(device).train(train)
            input = torch.rand(1, 1, 100, device=device)
            hx = torch.rand(2, 1, 100, device=device)
            output1, hy1 = rnn(input, hx)
            output2, hy2 = rnn(input, hx)
            buf = io.BytesIO()
            torch.save(rnn, buf)
            buf.seek(0)
            rnn2 = torch.load(buf, weights_only=False)
            rnn2.flatten_parameters()
            output3, hy3 = rnn2(input, hx)
            if p == 0 or not train:
                assert_equal(output1, output2)
                assert_equal(output1, output3)
                assert_equal(hy1, hy2)
                assert_equal(hy1, hy3)
            else:
                assert_not_equal(output1, output2)
                assert_not_equal(output1, output3)
                assert_not_equal(hy1, hy2)
                assert_not_equal(hy1, hy3)


@pytest.mark.parametrize("cuda", [False, pytest.param(True, marks=gpu)])
def test_RNN_change_dropout(impl, cuda):
    """test/test_nn.py::TestNN::test_RNN_change_dropout (``rnn.dropout = p`` between calls)."""
    device = "cuda" if cuda else "cpu"
    with default_dtype(torch.double):
        for train in (True, False):
            rnn = make(impl, 100, 100, 2, dropout=0, nonlinearity="relu").to(device)
            input = torch.rand(3, 2, 100, device=device)
            rnn.train(train)
            prev_output = None
            for p in (0, 0.5, 0, 0.7, 0.2, 1, 0.2, 0):
                rnn.dropout = p
                output1, hy1 = rnn(input)
                output2, hy2 = rnn(input)
                if p == 0 or p == 1 or not train:
                    assert_equal(output1, output2)
                    assert_equal(hy1, hy2)
                else:
                    assert_not_equal(output1, output2)
                    assert_not_equal(hy1, hy2)
                if prev_output is not None:
                    if not train:
                        assert_equal(output1.data, prev_output)
                        assert_equal(output2.data, prev_output)
                    else:
                        assert_not_equal(output1.data, prev_output)
                        assert_not_equal(output2.data, prev_output)
                prev_output = output1.data


def test_cudnn_forward_exception(impl):
    """test/test_nn.py::TestNN::test_cudnn_forward_exception (the nn.RNN entry; it runs on
    the CPU upstream too)."""
    rnn, hidden = make(impl, 10, 20, batch_first=True), torch.zeros(1, 2, 19)
    x_wrong = torch.randn(2, 3, 3)
    x_right = torch.randn(2, 3, 10)
    with pytest.raises(RuntimeError, match="Expected hidden.*size.*got"):
        rnn(x_right, hidden)
    with pytest.raises(RuntimeError, match=re.escape("input.size(-1) must be equal to input_size")):
        rnn(x_wrong)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cudnn_weight_tying(impl):
    """test/test_nn.py::TestNN::test_cudnn_weight_tying (the nn.RNN entry; TF32 off, as
    upstream's ``tf32_on_and_off`` off half)."""
    with no_tf32():
        rnn = make(impl, 10, 20, batch_first=True, bidirectional=True)
        rnn.bias_ih_l0_reverse = rnn.bias_ih_l0
        rnn.cuda()
        input = torch.randn(5, 4, 10, requires_grad=True, device="cuda")
        hx = torch.randn(2, 5, 20, requires_grad=True, device="cuda")
        opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
        opt.zero_grad()
        with warnings.catch_warnings(record=True):
            output = rnn(input, hx)
        output[0].sum().backward()
        opt.step()
        with warnings.catch_warnings(record=True):
            output_cuda = rnn(input, hx)
        rnn.cpu()
        hx = hx.cpu()
        output_cpu = rnn(input.cpu(), hx)
        assert_equal(output_cuda[0].cpu(), output_cpu[0], atol=1e-5, rtol=1e-5)
        assert_equal(output_cuda[1].cpu(), output_cpu[1], atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------
# test/test_modules.py generic tests over common_modules.py's nn.RNN ModuleInfo
# --------------------------------------------------------------------------------------


def module_inputs_torch_nn_RNN_GRU(dtype=torch.float64, requires_grad=True, packed=False):
    """common_modules.py::module_inputs_torch_nn_RNN_GRU(is_rnn=True): (constructor kwargs,
    forward args, batch_first). ``packed`` adds the ``with_packed_sequence`` samples."""

    def make_input(shape):
        return torch.randn(*shape, dtype=dtype).requires_grad_(requires_grad)

    samples = []
    for nl, b, b_f, bidir in product(("relu", "tanh"), (False, True), (False, True), (False, True)):
        cons_args = dict(
            input_size=2, hidden_size=2, num_layers=2, batch_first=b_f, bias=b,
            bidirectional=bidir, nonlinearity=nl,
        )  # fmt: skip
        cons_args_hidden = dict(cons_args, hidden_size=3)
        samples.append((cons_args, (make_input((3, 2)),), b_f))
        samples.append(
            (cons_args_hidden, (make_input((3, 2)), make_input((4 if bidir else 2, 3))), b_f)
        )
        if packed:
            for data, lengths in (((5, 2, 2), [5, 3]), ((5, 5, 2), [5, 3, 3, 2, 2])):
                seq = rnn_utils.pack_padded_sequence(make_input(data), torch.tensor(lengths))
                samples.append((cons_args, (seq,), b_f))
    return samples


def no_batch_dim_reference_rnn_gru(m, *args, batch_first):
    """common_modules.py::no_batch_dim_reference_rnn_gru."""
    inp = args[0]
    h = args[1].unsqueeze(1) if len(args) == 2 else None
    batch_dim = 0 if batch_first else 1
    output = m(inp.unsqueeze(batch_dim), h)
    return output[0].squeeze(batch_dim), output[1].squeeze(1)


def _seed_like(module_impl, cons, dtype, reference=None):
    m = make(module_impl, **cons).to(dtype)
    if reference is not None:
        m.load_state_dict(reference.state_dict())
    return m


def test_forward(impl):
    """test/test_modules.py::TestModule::test_forward (RNN samples, float64, reference_fn);
    the ported module also matches nn.RNN with the same weights."""
    for cons, args, b_f in module_inputs_torch_nn_RNN_GRU(packed=True):
        ref = nn.RNN(**cons).double()
        m = _seed_like(impl, cons, torch.float64, ref)
        out = m(*args)
        expected = ref(*args)
        if isinstance(args[0], torch.Tensor):
            assert_equal(out, no_batch_dim_reference_rnn_gru(m, *args, batch_first=b_f))
            assert_equal(out, expected)
        else:
            assert_equal(out[0].data, expected[0].data)
            assert_equal(out[1], expected[1])


def test_factory_kwargs(impl):
    """test/test_modules.py::TestModule::test_factory_kwargs: device= and dtype= reach every
    parameter (and the meta device builds without allocating)."""
    for dtype in (torch.float32, torch.float64):
        m = make(impl, 2, 3, 2, bidirectional=True, dtype=dtype, device="cpu")
        assert all(p.dtype == dtype and p.device.type == "cpu" for p in m.parameters())
    m = make(impl, 2, 3, 2, device="meta")
    assert all(p.is_meta for p in m.parameters())


def test_repr(impl):
    """test/test_modules.py::TestModule::test_repr: repr() and str() do not fail."""
    for cons, _, _ in module_inputs_torch_nn_RNN_GRU()[:4]:
        m = make(impl, **cons)
        assert repr(m) and str(m)


def test_pickle(impl):
    """test/test_modules.py::TestModule::test_pickle: pickle round trip, same output."""
    for cons, args, _ in module_inputs_torch_nn_RNN_GRU()[:8]:
        m = make(impl, **cons).double()
        m2 = pickle.loads(pickle.dumps(m))
        assert_equal(m(*args), m2(*args))


def test_save_load_state_dict(impl):
    """state_dict save/load (torch.save of ``state_dict()`` into a fresh module, and into
    nn.RNN), the round trip test_modules.py's serialization tests rely on."""
    for cons, args, _ in module_inputs_torch_nn_RNN_GRU()[:8]:
        m = make(impl, **cons).double()
        buf = io.BytesIO()
        torch.save(m.state_dict(), buf)
        buf.seek(0)
        state = torch.load(buf)
        m2 = make(impl, **cons).double()
        m2.load_state_dict(state)
        ref = nn.RNN(**cons).double()
        ref.load_state_dict(state)
        assert list(state) == list(ref.state_dict())
        assert_equal(m(*args), m2(*args))
        assert_equal(m(*args), ref(*args))


def test_non_contiguous_tensors(impl):
    """test/test_modules.py::TestModule::test_non_contiguous_tensors: non-contiguous inputs
    and grad outputs give the same outputs and gradients as contiguous ones."""

    def noncontig(t):
        return torch.stack([t.detach().clone().zero_(), t.detach()], -1).select(-1, 1)

    for cons, args, _ in module_inputs_torch_nn_RNN_GRU()[:16]:
        m = make(impl, **cons).double()
        results = []
        for transform in (lambda t: t.detach().clone(), noncontig):
            inputs = [transform(a).requires_grad_() for a in args]
            assert transform is not noncontig or not inputs[0].is_contiguous()
            m.zero_grad()
            out, h = m(*inputs)
            g_out, g_h = transform(torch.ones_like(out)), transform(torch.ones_like(h))
            torch.autograd.backward([out, h], [g_out, g_h])
            results.append(
                [out, h] + [i.grad for i in inputs] + [p.grad.clone() for p in m.parameters()]
            )
        for a, b in zip(*results, strict=True):
            assert_equal(a, b)


def _grad_inputs(impl):
    for cons, args, _ in module_inputs_torch_nn_RNN_GRU()[::5]:  # every 5th sample: fast
        m = make(impl, **cons).double()
        params = tuple(m.parameters())
        names = [n for n, _ in m.named_parameters()]
        n_args = len(args)

        def fn(*flat, m=m, names=names, n_args=n_args):
            inputs, weights = flat[:n_args], flat[n_args:]
            return torch.func.functional_call(m, dict(zip(names, weights, strict=True)), inputs)

        yield fn, tuple(args) + params


def test_grad(impl):
    """test/test_modules.py::TestModule::test_grad: gradcheck in float64 w.r.t. inputs and
    parameters, with fast mode and the batched-grad check on."""
    for fn, inputs in _grad_inputs(impl):
        assert gradcheck(fn, inputs, check_batched_grad=True, fast_mode=True)


def test_gradgrad(impl):
    """test/test_modules.py::TestModule::test_gradgrad: gradgradcheck in float64."""
    for fn, inputs in _grad_inputs(impl):
        assert gradgradcheck(fn, inputs, check_batched_grad=True, fast_mode=True)


def test_to(impl):
    """test/test_modules.py::TestModule::test_to: ``module.to(dtype)`` converts every
    parameter in place (same Parameter objects, as ``nn.Module.to``)."""
    m = make(impl, 2, 3, 2, bidirectional=True)
    before = [id(p) for p in m.parameters()]
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        m.to(dtype)
        assert all(p.dtype == dtype for p in m.parameters())
    assert [id(p) for p in m.parameters()] == before
    m.to(torch.float64)
    out, h = m(torch.randn(3, 2, dtype=torch.float64))
    assert out.dtype == h.dtype == torch.float64


def test_if_train_and_eval_modes_differ(impl):
    """test/test_modules.py::TestModule::test_if_train_and_eval_modes_differ: nn.RNN is
    ``train_and_eval_differ=True`` (dropout); the training flag round-trips."""
    m = make(impl, 2, 3, 2, dropout=0.5)
    assert m.training
    m.eval()
    assert not m.training and all(not c.training for c in m.modules())
    m.train()
    assert all(c.training for c in m.modules())


def test_empty_batch(impl):
    """test/test_nn.py::TestNN::test_RNN_input_size_zero / test_modules.py empty-input
    handling, on every configuration of the RNN samples: batch of 0, forward and backward."""
    for cons, _, b_f in module_inputs_torch_nn_RNN_GRU()[::2]:
        m = make(impl, **cons).double()
        x = torch.randn((0, 3, 2) if b_f else (3, 0, 2), dtype=torch.float64, requires_grad=True)
        out, h = m(x)
        d = 2 if cons["bidirectional"] else 1
        assert out.shape == ((0, 3, d * 2) if b_f else (3, 0, d * 2))
        assert h.shape == (2 * d, 0, 2)
        (out.sum() + h.sum()).backward()
        assert x.grad.shape == x.shape


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cpu_gpu_parity(impl):
    """test/test_modules.py::TestModule::test_cpu_gpu_parity (float64 and float32, TF32 off)."""
    with no_tf32():
        for dtype in (torch.float64, torch.float32):
            for cons, args, _ in module_inputs_torch_nn_RNN_GRU(dtype, packed=True)[::3]:
                m = make(impl, **cons).to(dtype)
                m_gpu = copy.deepcopy(m).cuda()
                args_gpu = [
                    a.detach().cuda().requires_grad_()
                    if isinstance(a, torch.Tensor)
                    else rnn_utils.PackedSequence(a.data.detach().cuda(), a.batch_sizes,
                                                  a.sorted_indices, a.unsorted_indices)
                    for a in args
                ]  # fmt: skip
                out, h = m(*args)
                out_gpu, h_gpu = m_gpu(*args_gpu)
                tol = {} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}
                out = out.data if isinstance(out, rnn_utils.PackedSequence) else out
                out_gpu = out_gpu.data if isinstance(out_gpu, rnn_utils.PackedSequence) else out_gpu
                assert_equal(out, out_gpu.cpu(), **tol)
                assert_equal(h, h_gpu.cpu(), **tol)


# --------------------------------------------------------------------------------------
# The error-type table (docs/elman_rnn_contract.md) and
# common_modules.py::module_error_inputs_torch_nn_RNN_GRU, via test_modules.py::test_errors
# --------------------------------------------------------------------------------------

#: (id, build-and-run, torch's exception type, torch's message (``re.escape``-d unless
#: ``regex``), ElmanRNN's behaviour when it differs: None = same as torch)
ERROR_TABLE = [
    # constructor
    ("nonlinearity", lambda M: M(3, 5, nonlinearity="garbage"), ValueError,
     "Unknown nonlinearity 'garbage'. Select from 'tanh' or 'relu'."),
    ("dropout<0", lambda M: M(3, 5, 2, dropout=-0.1), ValueError,
     "dropout should be a number in range [0, 1] representing the probability of an "
     "element being zeroed"),
    ("dropout>1", lambda M: M(3, 5, 2, dropout=1.5), ValueError,
     "dropout should be a number in range [0, 1]"),
    ("dropout=True", lambda M: M(3, 5, 2, dropout=True), ValueError,
     "dropout should be a number in range [0, 1]"),
    ("dropout=str", lambda M: M(3, 5, 2, dropout="0.5"), ValueError,
     "dropout should be a number in range [0, 1]"),
    ("bias=0", lambda M: M(3, 5, bias=0), TypeError, "bias should be of type bool, got: int"),
    ("bias=1", lambda M: M(3, 5, bias=1), TypeError, "bias should be of type bool, got: int"),
    ("bias=str", lambda M: M(3, 5, bias="True"), TypeError,
     "bias should be of type bool, got: str"),
    ("batch_first=0", lambda M: M(3, 5, batch_first=0), TypeError,
     "batch_first should be of type bool, got: int"),
    ("batch_first=1", lambda M: M(3, 5, batch_first=1), TypeError,
     "batch_first should be of type bool, got: int"),
    ("batch_first=str", lambda M: M(3, 5, batch_first="False"), TypeError,
     "batch_first should be of type bool, got: str"),
    ("input_size=float", lambda M: M(3.0, 5), TypeError,
     "input_size should be of type int, got: float"),
    ("input_size=str", lambda M: M("10", 5), TypeError,
     "input_size should be of type int, got: str"),
    ("input_size=0", lambda M: M(0, 5), ValueError, "input_size must be greater than zero"),
    ("input_size<0", lambda M: M(-1, 5), ValueError, "input_size must be greater than zero"),
    ("hidden_size=float", lambda M: M(3, 5.0), TypeError,
     "hidden_size should be of type int, got: float"),
    ("hidden_size=str", lambda M: M(3, "10"), TypeError,
     "hidden_size should be of type int, got: str"),
    ("hidden_size=0", lambda M: M(10, 0, 1), ValueError, "hidden_size must be greater than zero"),
    ("num_layers=0", lambda M: M(10, 10, 0), ValueError, "num_layers must be greater than zero"),
    ("num_layers<0", lambda M: M(10, 10, -1), ValueError, "num_layers must be greater than zero"),
    # torch has no type check for num_layers: its TypeError comes from range() / "<=".
    ("num_layers=float", lambda M: M(3, 5, 2.0), TypeError,
     ("'float' object cannot be interpreted as an integer", "num_layers should be of type int")),
    ("num_layers=str", lambda M: M(3, 5, "2"), TypeError,
     ("'<=' not supported between instances of 'str' and 'int'",
      "num_layers should be of type int")),
    ("proj_size", lambda M: M(30, 20, 2, proj_size=10), ValueError,
     "proj_size argument is only supported for LSTM, not RNN or GRU"),
    ("proj_size=0", lambda M: M(30, 20, proj_size=0), ValueError,
     "proj_size argument is only supported for LSTM, not RNN or GRU"),
    # forward
    ("input 4-D", lambda M: M(3, 5)(torch.randn(1, 2, 3, 3)), ValueError,
     "RNN: Expected input to be 2D or 3D, got 4D tensor instead"),
    ("input 1-D", lambda M: M(3, 5)(torch.randn(3)), ValueError,
     "RNN: Expected input to be 2D or 3D, got 1D tensor instead"),
    ("input dtype", lambda M: M(3, 5)(torch.randn(2, 4, 3, dtype=torch.float64)), ValueError,
     "RNN input dtype (torch.float64) does not match weight dtype (torch.float32). "
     "Convert input: input.to(torch.float32), or convert model: model.to(torch.float64)"),
    ("input integer", lambda M: M(3, 5)(torch.ones(2, 4, 3, dtype=torch.long)), ValueError,
     "RNN input dtype (torch.int64) does not match weight dtype (torch.float32). "
     "Convert input: input.to(torch.float32), or convert model: model.to(torch.int64)"),
    ("input size", lambda M: M(3, 5)(torch.randn(2, 4, 7)), RuntimeError,
     "input.size(-1) must be equal to input_size. Expected 3, got 7"),
    ("packed input size", lambda M: M(3, 5)(rnn_utils.pack_sequence([torch.randn(3, 7)])),
     RuntimeError, "input.size(-1) must be equal to input_size. Expected 3, got 7"),
    ("hx batch", lambda M: M(3, 5, 2)(torch.randn(6, 4, 3), torch.randn(2, 7, 5)), RuntimeError,
     "Expected hidden size (2, 4, 5), got [2, 7, 5]"),
    ("hx layers", lambda M: M(3, 5, 2)(torch.randn(6, 4, 3), torch.randn(3, 4, 5)), RuntimeError,
     "Expected hidden size (2, 4, 5), got [3, 4, 5]"),
    ("hx hidden", lambda M: M(3, 5, 2)(torch.randn(6, 4, 3), torch.randn(2, 4, 7)), RuntimeError,
     "Expected hidden size (2, 4, 5), got [2, 4, 7]"),
    ("input batch", lambda M: M(3, 5, 2)(torch.randn(6, 7, 3), torch.randn(2, 4, 5)),
     RuntimeError, "Expected hidden size (2, 7, 5), got [2, 4, 5]"),
    ("packed hx batch", lambda M: M(3, 5)(
        rnn_utils.pack_sequence([torch.randn(3, 3), torch.randn(2, 3)]), torch.randn(1, 3, 5)),
     RuntimeError, "Expected hidden size (1, 2, 5), got [1, 3, 5]"),
    # unbatched: torch reports the shape with the batch axis it added, ElmanRNN without it.
    ("unbatched hx size", lambda M: M(3, 5, 2)(torch.randn(6, 3), torch.randn(3, 5)),
     RuntimeError, ("Expected hidden size (2, 1, 5), got [3, 1, 5]",
                    "Expected hidden size (2, 5), got [3, 5]")),
    ("batched input, 2-D hx", lambda M: M(3, 5, 2)(torch.randn(6, 4, 3), torch.randn(2, 5)),
     RuntimeError, "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    ("unbatched input, 3-D hx", lambda M: M(3, 5, 2)(torch.randn(6, 3), torch.randn(2, 1, 5)),
     RuntimeError, "For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
    ("zero time steps", lambda M: M(3, 5)(torch.randn(0, 4, 3)), RuntimeError,
     "Expected sequence length to be larger than 0 in RNN"),
    ("zero time steps, batch_first", lambda M: M(3, 5, batch_first=True)(torch.randn(4, 0, 3)),
     RuntimeError, "Expected sequence length to be larger than 0 in RNN"),
    ("zero time steps, unbatched", lambda M: M(3, 5)(torch.randn(0, 3)), RuntimeError,
     "Expected sequence length to be larger than 0 in RNN"),
    # hx dtype: torch fails inside its kernel; ElmanRNN checks it up front.
    ("hx dtype", lambda M: M(3, 5)(torch.randn(2, 4, 3), torch.randn(1, 4, 5, dtype=torch.double)),
     RuntimeError, ("mat1 and mat2 must have the same dtype",
                    "RNN hx dtype (torch.float64) does not match weight dtype (torch.float32)")),
]  # fmt: skip


@pytest.mark.parametrize("row", ERROR_TABLE, ids=[r[0] for r in ERROR_TABLE])
def test_errors(impl, row):
    """test/test_modules.py::TestModule::test_errors over
    common_modules.py::module_error_inputs_torch_nn_RNN_GRU, extended to the whole error table
    of docs/elman_rnn_contract.md: torch's exception type, and torch's wording in the message
    (where two messages are given: torch's, then ElmanRNN's when torch's is an accident of
    its implementation)."""
    _, build, exc_type, message = row
    if isinstance(message, tuple):
        message = message[0] if impl == "nn.RNN" else message[1]

    def M(*args, **kwargs):  # noqa: N802 - stands for the module class
        return make(impl, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc_type) as info:
            build(M)
    assert message in str(info.value)
    if impl != "nn.RNN":  # ElmanRNN's errors also satisfy callers that catch ValueError
        assert isinstance(info.value, ValueError)


def test_dropout_warning(impl):
    """nn.RNN warns (UserWarning) for dropout > 0 with one layer; row of the error table."""
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        make(impl, 3, 5, dropout=0.5)


def test_bidirectional_not_bool(impl):
    """Deliberate deviation (docs/elman_rnn_contract.md): nn.RNN takes any truthy value for
    ``bidirectional`` (``"False"`` means two directions); ElmanRNN raises TypeError."""
    if impl == "nn.RNN":
        assert make(impl, 3, 5, bidirectional="False").bidirectional == "False"
        return
    with pytest.raises(TypeError, match="bidirectional should be of type bool, got: str"):
        make(impl, 3, 5, bidirectional="False")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_errors_device(impl):
    """Device rows of the error table (test/test_nn.py::TestNN::test_rnn_check_device)."""
    m = make(impl, 3, 5)
    with pytest.raises(RuntimeError, match="Input and parameter tensors are not at the same"):
        m(torch.randn(2, 4, 3, device="cuda"))
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same"):
        m(torch.randn(2, 4, 3), torch.randn(1, 4, 5, device="cuda"))


# --- test/test_nn.py (TestNN): nonlinearity, retained graphs, variable-length sequences ----


def test_RNN_nonlinearity(impl):
    """test/test_nn.py::TestNN.test_RNN_nonlinearity."""
    rnn = make(impl, 1, 10)
    assert rnn.nonlinearity == "tanh"
    rnn = make(impl, 1, 10, nonlinearity="relu")
    assert rnn.nonlinearity == "relu"
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        make(impl, 1, 10, nonlinearity="garbage")


def test_RNN_nonlinearity_passed_as_arg(impl):
    """test/test_nn.py::TestNN.test_RNN_nonlinearity_passed_as_arg."""
    rnn = make(impl, 2, 3, 1, "relu")
    assert rnn.nonlinearity == "relu"


def test_rnn_retain_variables(impl):
    """test/test_nn.py::TestNN.test_rnn_retain_variables (the nn.RNN of its list), float64."""
    rnn = make(impl, 10, 20, num_layers=2).double()
    input = torch.randn(5, 6, 10, dtype=torch.double, requires_grad=True)
    output = rnn(input)
    output[0].sum().backward(retain_graph=True)
    grads = [input.grad.clone()] + [p.grad.clone() for p in rnn.parameters()]
    for _ in range(4):
        rnn.zero_grad()
        input.grad.zero_()
        output[0].sum().backward(retain_graph=True)
        grads2 = [input.grad] + [p.grad for p in rnn.parameters()]
        for a, b in zip(grads, grads2, strict=True):
            assert_equal(a, b)


def test_variable_sequence(impl):
    """test/test_nn.py::TestNN.test_variable_sequence (``_test_variable_sequence``).

    Upstream runs an LSTM; here the module under test. A packed batch of different lengths
    must give what running each sequence alone gives: outputs, final states and gradients.
    """

    def pad(var, length):
        if var.size(0) == length:
            return var
        return torch.cat([var, var.new_zeros(length - var.size(0), *var.size()[1:])])

    torch.manual_seed(0)
    rnn = make(impl, 3, 4, bidirectional=True, num_layers=2).double()
    rnn2 = copy.deepcopy(rnn)
    lengths = [7, 5, 5, 2, 1, 1]
    max_length = lengths[0]
    x_leaf = torch.randn(max_length, len(lengths), 3, dtype=torch.double, requires_grad=True)
    x = x_leaf

    seq_outs, seq_hiddens = [], []
    for i, length in enumerate(lengths):
        out, hid = rnn2(x[:length, i : i + 1])
        seq_outs.append(pad(out, max_length))
        seq_hiddens.append(hid)
    seq_out = torch.cat(seq_outs, 1)
    seq_hidden = torch.cat(seq_hiddens, 1)

    packed = rnn_utils.pack_padded_sequence(x, lengths)
    packed_out, packed_hidden = rnn(packed)
    unpacked, unpacked_len = rnn_utils.pad_packed_sequence(packed_out)

    assert_equal(packed_hidden, seq_hidden)
    assert_equal(unpacked, seq_out)
    assert unpacked_len.tolist() == lengths

    seq_out.sum().backward()
    grad_x = x_leaf.grad.clone()
    x_leaf.grad.zero_()
    unpacked.sum().backward()
    assert_equal(x_leaf.grad, grad_x)
    for p1, p2 in zip(rnn.parameters(), rnn2.parameters(), strict=True):
        assert_equal(p1.grad, p2.grad)
