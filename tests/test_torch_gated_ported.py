"""PyTorch's own tests of ``nn.LSTM`` and ``nn.GRU``, ported to ``seqmodels.LSTM`` / ``GRU``.

Every test keeps its upstream name and cites its source: ``test/test_nn.py`` (TestNN,
TestNNDeviceType) or ``test/test_modules.py`` run over the ``nn.LSTM`` / ``nn.GRU`` entries
of ``torch/testing/_internal/common_modules.py`` (``module_inputs_torch_nn_LSTM``,
``module_inputs_torch_nn_RNN_GRU(is_rnn=False)``, ``module_error_inputs_torch_nn_RNN_GRU``).
Each runs for ``mode in ["LSTM", "GRU"]`` and ``impl in ["nn.LSTM"/"nn.GRU", "bptt",
"autograd"]``: the torch module itself is the control and must pass too. Upstream tests
that need torch internals or cuDNN weight formats are listed with the reason in
``docs/elman_rnn_contract.md`` ("LSTM and GRU"), which also holds the error table that
``test_errors`` enforces; the tests of LSTM projections are ported in
``tests/test_lstm_proj.py``. Sizes are reduced where noted.
"""

from __future__ import annotations

import copy
import io
import pickle
import re
import warnings
from functools import partial
from itertools import product

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck
from torch.nn.utils import rnn as rnn_utils

import seqmodels
from seqmodels.diagnostics.precision import exact_float32 as no_tf32  # TF32 off, restored

CUDA = torch.cuda.is_available()
gpu = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs a CUDA device")]
CASES = [
    (mode, impl) for mode in ("LSTM", "GRU") for impl in ("nn", "bptt", "autograd", "torch", "auto")
]


def case_id(case):
    mode, impl = case
    return f"{mode}-" + (f"nn.{mode}" if impl == "nn" else impl)


@pytest.fixture(params=CASES, ids=[case_id(c) for c in CASES])
def case(request):
    return request.param


def make(case, *args, **kwargs) -> nn.Module:
    """nn.LSTM/nn.GRU, or seqmodels.LSTM/GRU on one backend, from the same arguments."""
    mode, impl = case
    if impl == "nn":
        return getattr(nn, mode)(*args, **kwargs)
    return getattr(seqmodels, mode)(*args, backend=impl, **kwargs)


def is_lstm(case) -> bool:
    return case[0] == "LSTM"


def state_of(case, h, c=None):
    """``h`` for the GRU, ``(h, c)`` for the LSTM (``c`` defaults to ``h``)."""
    return (h, h if c is None else c) if is_lstm(case) else h


def flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def assert_equal(a, b, **kw):
    torch.testing.assert_close(a, b, **kw)


# --------------------------------------------------------------------------------------
# test/test_nn.py :: TestNN
# --------------------------------------------------------------------------------------


def test_rnn_args_check(case):
    """test/test_nn.py::TestNN::test_rnn_args_check (modes 'GRU', 'LSTM'; for the LSTM a
    bad shape is tried as h with a good c, and as c with a good h, as upstream)."""
    input_size, hidden_size, num_layers, batch_size, seq_len, num_directions = 3, 5, 2, 4, 6, 1
    bad_size = 7
    correct_input_shape = (seq_len, batch_size, input_size)
    correct_hidden_shape = (num_layers * num_directions, batch_size, hidden_size)

    def get_inputs(input_shape, hidden_shape):
        input, hidden = torch.randn(input_shape), torch.randn(hidden_shape)
        if not is_lstm(case):
            return [(input, hidden)]
        if hidden_shape == correct_hidden_shape:
            return [(input, (hidden, hidden))]
        good_hidden = torch.randn(correct_hidden_shape)
        return [(input, (hidden, good_hidden)), (input, (good_hidden, hidden))]

    def test(input_shape, hidden_shape):
        for input, hidden in get_inputs(input_shape, hidden_shape):
            model = make(case, input_size, hidden_size, num_layers)
            with pytest.raises(RuntimeError):
                model(input, hidden)

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
def test_rnn_check_device(case):
    """test/test_nn.py::TestNN::test_rnn_check_device (modes 'GRU', 'LSTM'; the last LSTM case
    needs two GPUs and is left out)."""
    model = make(case, 3, 5, 2)
    model_cuda = copy.deepcopy(model).to("cuda:0")
    input, hidden = torch.randn(6, 4, 3), torch.randn(2, 4, 5)
    with pytest.raises(RuntimeError, match="Input and parameter tensors are not at the same"):
        model(input.to("cuda:0"))
    with pytest.raises(RuntimeError, match="Input and parameter tensors are not at the same"):
        model_cuda(input)
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same device"):
        model(input, state_of(case, hidden.to("cuda:0")))
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same device"):
        model_cuda(input.to("cuda:0"), state_of(case, hidden))


def test_rnn_initial_hidden_state(case):
    """test/test_nn.py::TestNN::test_rnn_initial_hidden_state (batch 32 -> 4)."""
    rnn = make(case, 30, 20, 2)
    input = torch.randn(10, 4, 30)
    hidden = state_of(case, torch.zeros(2, 4, 20))
    output1, hidden1 = rnn(input, hidden)
    output2, hidden2 = rnn(input)
    assert_equal(output1, output2)
    assert_equal(hidden1, hidden2)


def test_projections_errors_on_gru_and_rnn(case):
    """test/test_nn.py::TestNN::test_projections_errors_on_gru_and_rnn (mode 'GRU'); the LSTM
    takes the same argument (the projection tests: tests/test_lstm_proj.py)."""
    if case[0] == "GRU":
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
            make(case, 30, 20, 2, proj_size=10)
    else:
        assert make(case, 30, 20, 2, proj_size=10).proj_size == 10


def test_projections_lstm_construct(case):
    """The constructors of test/test_nn.py::TestNN::test_projections_lstm_{args_check,
    initial_hidden_state,check_device} and of the ``proj_size=2`` samples of
    common_modules.py::module_inputs_torch_nn_LSTM (upstream's sizes 3/5/2, 30/20/10 and
    2/3/2) build, with ``h`` as wide as ``proj_size``; torch's own proj_size checks are
    shared. The tests themselves are ported in tests/test_lstm_proj.py."""
    if not is_lstm(case):
        pytest.skip("LSTM only")
    for args in ((3, 5, 2), (30, 20, 2), (2, 3, 2)):
        proj = {3: 2, 30: 10, 2: 2}[args[0]]
        rnn = make(case, *args, proj_size=proj)
        assert rnn.proj_size == proj and rnn.weight_hr_l1.shape == (proj, args[1])
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        make(case, 3, 5, proj_size=5)
    with pytest.raises(ValueError, match="proj_size should be a positive integer or zero"):
        make(case, 3, 5, proj_size=-1)


def _test_RNN_cpu_vs_cudnn(case, dropout, dtype=torch.double, device="cpu", reduced=True):
    """test/test_nn.py::TestNN::_test_RNN_cpu_vs_cudnn, the nn.LSTM / nn.GRU loop (the
    projection loop: tests/test_lstm_proj.py::test_RNN_cpu_vs_cudnn_projections).

    Upstream runs the same weights on the CPU and on cuDNN; here the reference is the torch
    module on the CPU and the other side ``impl`` on ``device``. ``reduced``: every other
    configuration of the 64 (the bias / bidirectional / batch_first / packed factors are all
    still covered), for the CPU time budget.
    """
    lstm = is_lstm(case)

    def forward_backward(on_device, rnn, input_val, grad_output, weights_val, hx_val, grad_hy):
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
        if lstm:
            hx = (hx_val.clone().requires_grad_(True), hx_val.add(1).requires_grad_(True))
        else:
            hx = hx_val.clone().requires_grad_(True)
        if on_device:
            rnn.to(device)
            input_var.data = input_var.data.to(device)
            for h in flat(hx):
                h.data = h.data.to(device)
            grad_hy = grad_hy.to(device)
            grad_output = grad_output.to(device)
        output, hy = rnn(input, hx)
        if isinstance(output, rnn_utils.PackedSequence):
            output = output.data
        if lstm:
            torch.autograd.backward([output, hy[0], hy[1]], [grad_output, grad_hy, grad_hy + 1])
        else:
            torch.autograd.backward([output, hy], [grad_output, grad_hy])
        return {
            "output": output.data,
            "hy": hy[0].data if lstm else hy.data,
            "weights": rnn.all_weights,
            "grad_input": input_var.grad.data,
            "grad_hx": hx[0].grad.data if lstm else hx.grad.data,
            "cy": hy[1].data if lstm else None,
            "grad_cx": hx[1].grad.data if lstm else None,
        }

    input_size, hidden_size, num_layers, seq_length, batch = 10, 6, 2, 7, 6

    def make_noncontig(tensor):
        ndim = tensor.dim()
        return torch.stack([tensor.clone().zero_(), tensor], ndim).select(ndim, 1)

    def compare_cpu_gpu(outputs_cpu, outputs_gpu):
        assert list(outputs_cpu) == list(outputs_gpu)
        for key in outputs_cpu:
            if key != "weights" and outputs_cpu[key] is not None:
                assert_equal(outputs_cpu[key], outputs_gpu[key].cpu(), atol=5e-5, rtol=0)
        for cpu_layer, gpu_layer in zip(
            outputs_cpu["weights"], outputs_gpu["weights"], strict=True
        ):
            for cpu_weight, gpu_weight in zip(cpu_layer, gpu_layer, strict=True):
                assert_equal(cpu_weight.grad.data, gpu_weight.grad.data.cpu(), atol=5e-5, rtol=0)

    configurations = list(product((True, False), repeat=6))
    if reduced:
        configurations = configurations[::2]
    for bias, bidirectional, batch_first, contig, variable_len, lens_as_tensor in configurations:
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
        ref_case = (case[0], "nn")
        rnn = make(ref_case, input_size, hidden_size, num_layers, **kwargs).to(dtype)
        outputs_cpu = forward_backward(
            False, rnn, input_val, grad_output, rnn.all_weights, hx_val, grad_hy
        )
        rnn_gpu = make(case, input_size, hidden_size, num_layers, **kwargs).to(dtype)
        outputs_gpu = forward_backward(
            device != "cpu", rnn_gpu, input_val, grad_output, rnn.all_weights, hx_val, grad_hy
        )
        compare_cpu_gpu(outputs_cpu, outputs_gpu)


def test_RNN_cpu_vs_cudnn_no_dropout(case):
    """test/test_nn.py::TestNN::test_RNN_cpu_vs_cudnn_no_dropout, as CPU parity with the torch
    module (LSTM, GRU; every other configuration)."""
    _test_RNN_cpu_vs_cudnn(case, 0, torch.double)


def test_RNN_cpu_vs_cudnn_with_dropout(case):
    """test/test_nn.py::TestNN::test_RNN_cpu_vs_cudnn_with_dropout (dropout=1, deterministic)."""
    _test_RNN_cpu_vs_cudnn(case, 1)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dropout", [0, 1])
def test_RNN_cpu_vs_cudnn_cuda(case, dropout):
    """test/test_nn.py::TestNN::test_RNN_cpu_vs_cudnn_{no,with}_dropout on CUDA, all 64
    configurations: ``impl`` on the GPU against the torch module on the CPU, float64."""
    with no_tf32():
        _test_RNN_cpu_vs_cudnn(case, dropout, torch.double, device="cuda", reduced=False)


@pytest.mark.parametrize("cuda", [False, pytest.param(True, marks=gpu)])
def test_error_RNN_seq_len_zero(case, cuda):
    """test/test_nn.py::TestNN::test_error_RNN_seq_len_zero (nn.LSTM, nn.GRU)."""
    device = "cuda" if cuda else "cpu"
    for bidirectional in (True, False):
        input = torch.ones(0, 10, 5, device=device, dtype=torch.double)
        rnn = make(case, 5, 6, bidirectional=bidirectional).to(device, torch.double)
        with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
            rnn(input)


@pytest.mark.parametrize("cuda", [False, pytest.param(True, marks=gpu)])
def test_RNN_input_size_zero(case, cuda):
    """test/test_nn.py::TestNN::test_RNN_input_size_zero (nn.LSTM, nn.GRU): batch of 0."""
    device = "cuda" if cuda else "cpu"
    input = torch.zeros((5, 0, 3), device=device)
    rnn = make(case, input_size=3, hidden_size=4).to(device)
    outs = rnn(input)
    assert outs[0].shape == torch.Size([5, 0, 4])
    outs[0].sum().backward()


def test_cudnn_forward_exception(case):
    """test/test_nn.py::TestNN::test_cudnn_forward_exception (the nn.LSTM and nn.GRU entries;
    the proj_size=10 one: tests/test_lstm_proj.py::test_cudnn_forward_exception)."""
    rnn = make(case, 10, 20, batch_first=True)
    hidden = state_of(case, torch.zeros(1, 2, 19), torch.zeros(1, 2, 19))
    x_wrong, x_right = torch.randn(2, 3, 3), torch.randn(2, 3, 10)
    with pytest.raises(RuntimeError, match="Expected hidden.*size.*got"):
        rnn(x_right, hidden)
    with pytest.raises(RuntimeError, match=re.escape("input.size(-1) must be equal to input_size")):
        rnn(x_wrong)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cudnn_weight_tying(case):
    """test/test_nn.py::TestNN::test_cudnn_weight_tying (the nn.LSTM / nn.GRU entries, TF32
    off as upstream's ``tf32_on_and_off`` off half)."""
    with no_tf32():
        rnn = make(case, 10, 20, batch_first=True, bidirectional=True)
        rnn.bias_ih_l0_reverse = rnn.bias_ih_l0
        rnn.cuda()
        input = torch.randn(5, 4, 10, requires_grad=True, device="cuda")
        hx = state_of(case, torch.randn(2, 5, 20, requires_grad=True, device="cuda"),
                      torch.randn(2, 5, 20, requires_grad=True, device="cuda"))  # fmt: skip
        opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
        opt.zero_grad()
        with warnings.catch_warnings(record=True):
            output = rnn(input, hx)
        output[0].sum().backward()
        opt.step()
        assert rnn.bias_ih_l0_reverse is rnn.bias_ih_l0
        with warnings.catch_warnings(record=True):
            output_cuda = rnn(input, hx)
        rnn.cpu()
        hx_cpu = tuple(h.cpu() for h in hx) if is_lstm(case) else hx.cpu()
        output_cpu = rnn(input.cpu(), hx_cpu)
        assert_equal(output_cuda[0].cpu(), output_cpu[0], atol=1e-5, rtol=1e-5)
        for a, b in zip(flat(output_cuda[1]), flat(output_cpu[1]), strict=True):
            assert_equal(a.cpu(), b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cuda", [False, pytest.param(True, marks=gpu)])
def test_RNN_dropout_state(case, cuda):
    """test/test_nn.py::TestNN::test_RNN_dropout_state, run on the LSTM / GRU (upstream runs
    it on nn.RNN only): torch.save/torch.load of the module, dropout on and off (40 -> 100)."""
    device = "cuda" if cuda else "cpu"
    for p in (0, 0.1234):
        for train in (True, False):
            rnn = make(case, 40, 40, 2, bias=False, dropout=p).to(device).train(train)
            input = torch.rand(1, 1, 40, device=device)
            hx = state_of(case, torch.rand(2, 1, 40, device=device))
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
                assert not torch.allclose(output1, output2)
                assert not torch.allclose(output1, output3)


# --------------------------------------------------------------------------------------
# test/test_nn.py :: TestNNDeviceType
# --------------------------------------------------------------------------------------


def _test_rnn_mod(mod, inp):
    """test/test_nn.py::TestNNDeviceType::_test_rnn_mod: gradcheck + gradgradcheck of the
    flattened outputs w.r.t. the input (full mode, as upstream: one small case)."""

    def flatten_out(mod, inp):
        out = mod(inp)
        return tuple([t if isinstance(t, torch.Tensor) else tt for t in out for tt in t])

    gradcheckfunc = partial(flatten_out, mod)
    assert gradcheck(gradcheckfunc, inp, check_batched_grad=False)
    assert gradgradcheck(gradcheckfunc, inp, check_batched_grad=False)


def test_LSTM_grad_and_gradgrad(case):
    """test/test_nn.py::TestNNDeviceType::test_LSTM_grad_and_gradgrad (and
    test_GRU_grad_and_gradgrad for mode GRU): float64, hsize 4, bias on and off."""
    hsize = 4
    inp = torch.rand(1, 3, hsize, dtype=torch.double, requires_grad=True)
    for bias in (True, False):
        mod = make(case, hsize, hsize, bias=bias).double()
        _test_rnn_mod(mod, inp)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_rnn_fused(case):
    """test/test_nn.py::TestNNDeviceType::test_rnn_fused (float64): the module on CUDA
    against the torch module on the CPU, outputs, states and every gradient."""
    dtype, device = torch.double, "cuda"
    input_size, hidden_size, num_layers, seq_length, batch = 10, 6, 2, 7, 6
    input_val = torch.randn(seq_length, batch, input_size, dtype=dtype)
    grad_output = torch.randn(seq_length, batch, hidden_size, dtype=dtype)
    hx_val = torch.randn(num_layers, batch, hidden_size, dtype=dtype)
    grad_hy = torch.randn(num_layers, batch, hidden_size, dtype=dtype)
    with torch.backends.cudnn.flags(enabled=False, allow_tf32=None):
        for bias in (True, False):
            rnn = make((case[0], "nn"), input_size, hidden_size, num_layers, bias=bias).to(dtype)
            rnn_device = make(case, input_size, hidden_size, num_layers, bias=bias).to(
                device, dtype
            )
            rnn_device.load_state_dict(rnn.state_dict())
            if is_lstm(case):
                hx = (hx_val.clone().requires_grad_(), hx_val.clone().add(1).requires_grad_())
                hx_device = tuple(h.detach().to(device).requires_grad_() for h in hx)
            else:
                hx = hx_val.clone().requires_grad_()
                hx_device = hx_val.clone().to(device).requires_grad_()
            inp = input_val.clone().requires_grad_()
            inp_cu = input_val.clone().to(device).requires_grad_()
            output1, hy1 = rnn(inp, hx)
            output2, hy2 = rnn_device(inp_cu, hx_device)
            grads = [grad_output, grad_hy] + ([grad_hy + 1] if is_lstm(case) else [])
            torch.autograd.backward([output1, *flat(hy1)], grads)
            torch.autograd.backward([output2, *flat(hy2)], [g.to(device) for g in grads])
            assert_equal(output1, output2.cpu())
            for a, b in zip(flat(hy1), flat(hy2), strict=True):
                assert_equal(a, b.cpu())
            for (n, p1), p2 in zip(rnn.named_parameters(), rnn_device.parameters(), strict=True):
                assert_equal(p1.grad, p2.grad.cpu(), atol=5e-5, rtol=0, msg=n)
            assert_equal(inp.grad, inp_cu.grad.cpu())
            for a, b in zip(flat(hx), flat(hx_device), strict=True):
                assert_equal(a.grad, b.grad.cpu())


def test_rnn_retain_variables(case):
    """test/test_nn.py::TestNNDeviceType::_test_rnn_retain_variables (the nn.LSTM and nn.GRU
    of its list, float64): repeated backward through a retained graph gives the same grads."""
    rnn = make(case, 10, 20, num_layers=2).double()
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


def test_variable_sequence(case):
    """test/test_nn.py::TestNNDeviceType::test_variable_sequence (``_test_variable_sequence``,
    upstream on an LSTM(3, 4, bidirectional=True, num_layers=2)): a packed batch of different
    lengths gives what running each sequence alone gives: outputs, states and gradients."""

    def pad(var, length):
        if var.size(0) == length:
            return var
        return torch.cat([var, var.new_zeros(length - var.size(0), *var.size()[1:])])

    torch.manual_seed(0)
    rnn = make(case, 3, 4, bidirectional=True, num_layers=2).double()
    rnn2 = copy.deepcopy(rnn)
    lengths = [7, 5, 5, 2, 1, 1]
    max_length = lengths[0]
    x_leaf = torch.randn(max_length, len(lengths), 3, dtype=torch.double, requires_grad=True)
    x = x_leaf

    seq_outs, seq_hiddens = [], []
    for i, length in enumerate(lengths):
        out, hid = rnn2(x[:length, i : i + 1])
        seq_outs.append(pad(out, max_length))
        seq_hiddens.append(flat(hid))
    seq_out = torch.cat(seq_outs, 1)
    seq_hidden = [torch.cat(parts, 1) for parts in zip(*seq_hiddens, strict=True)]

    packed = rnn_utils.pack_padded_sequence(x, lengths)
    packed_out, packed_hidden = rnn(packed)
    unpacked, unpacked_len = rnn_utils.pad_packed_sequence(packed_out)

    assert_equal(flat(packed_hidden), seq_hidden)
    assert_equal(unpacked, seq_out)
    assert unpacked_len.tolist() == lengths

    seq_out.sum().backward()
    grad_x = x_leaf.grad.clone()
    x_leaf.grad.zero_()
    unpacked.sum().backward()
    assert_equal(x_leaf.grad, grad_x)
    for p1, p2 in zip(rnn.parameters(), rnn2.parameters(), strict=True):
        assert_equal(p1.grad, p2.grad)


# --------------------------------------------------------------------------------------
# test/test_modules.py generic tests over common_modules.py's nn.LSTM / nn.GRU ModuleInfo
# --------------------------------------------------------------------------------------


def module_inputs(case, dtype=torch.float64, requires_grad=True, packed=False):
    """(constructor kwargs, forward args, batch_first) of
    common_modules.py::module_inputs_torch_nn_LSTM (proj_size=0 samples; the proj_size=2 ones
    are in tests/test_lstm_proj.py) or module_inputs_torch_nn_RNN_GRU(is_rnn=False) with
    ``with_packed_sequence`` when ``packed``."""

    def make_input(shape):
        return torch.randn(*shape, dtype=dtype).requires_grad_(requires_grad)

    samples = []
    for b, b_f, bidir in product((False, True), repeat=3):
        d = 4 if bidir else 2
        if is_lstm(case):
            cons = dict(input_size=2, hidden_size=3, num_layers=2, proj_size=0,
                        batch_first=b_f, bias=b, bidirectional=bidir)  # fmt: skip
            samples.append((cons, (make_input((2, 2)),), b_f))
            samples.append(
                (cons, (make_input((3, 2)), (make_input((d, 3)), make_input((d, 3)))), b_f)
            )
            seq_cons = cons
        else:
            cons = dict(input_size=2, hidden_size=2, num_layers=2,
                        batch_first=b_f, bias=b, bidirectional=bidir)  # fmt: skip
            samples.append((cons, (make_input((3, 2)),), b_f))
            samples.append(
                (dict(cons, hidden_size=3), (make_input((3, 2)), make_input((d, 3))), b_f)
            )
            seq_cons = cons
        if packed:  # upstream's with_packed_sequence (GRU); the same inputs for the LSTM
            for data, lengths in (((5, 2, 2), [5, 3]), ((5, 5, 2), [5, 3, 3, 2, 2])):
                seq = rnn_utils.pack_padded_sequence(make_input(data), torch.tensor(lengths))
                samples.append((seq_cons, (seq,), b_f))
    return samples


def no_batch_dim_reference(case, m, *args, batch_first):
    """common_modules.py::no_batch_dim_reference_lstm / no_batch_dim_reference_rnn_gru."""
    inp = args[0]
    h = None
    if len(args) == 2:
        h = tuple(s.unsqueeze(1) for s in args[1]) if is_lstm(case) else args[1].unsqueeze(1)
    batch_dim = 0 if batch_first else 1
    output = m(inp.unsqueeze(batch_dim), h)
    hidden = tuple(s.squeeze(1) for s in flat(output[1]))
    return output[0].squeeze(batch_dim), hidden if is_lstm(case) else hidden[0]


def _seed_like(case, cons, dtype, reference=None):
    m = make(case, **cons).to(dtype)
    if reference is not None:
        m.load_state_dict(reference.state_dict())
    return m


def test_forward(case):
    """test/test_modules.py::TestModule::test_forward (float64, reference_fn); the ported
    module also matches the torch module with the same weights."""
    for cons, args, b_f in module_inputs(case, packed=True):
        ref = make((case[0], "nn"), **cons).double()
        m = _seed_like(case, cons, torch.float64, ref)
        out = m(*args)
        expected = ref(*args)
        if isinstance(args[0], torch.Tensor):
            assert_equal(out, no_batch_dim_reference(case, m, *args, batch_first=b_f))
            assert_equal(out, expected)
        else:
            assert_equal(out[0].data, expected[0].data)
            assert_equal(out[1], expected[1])


def test_factory_kwargs(case):
    """test/test_modules.py::TestModule::test_factory_kwargs (device=, dtype=, meta)."""
    for dtype in (torch.float32, torch.float64):
        m = make(case, 2, 3, 2, bidirectional=True, dtype=dtype, device="cpu")
        assert all(p.dtype == dtype and p.device.type == "cpu" for p in m.parameters())
    m = make(case, 2, 3, 2, device="meta")
    assert all(p.is_meta for p in m.parameters())


def test_repr(case):
    """test/test_modules.py::TestModule::test_repr: repr() and str() do not fail."""
    for cons, _, _ in module_inputs(case)[:4]:
        m = make(case, **cons)
        assert repr(m) and str(m)


def test_pickle(case):
    """test/test_modules.py::TestModule::test_pickle: pickle round trip, same output."""
    for cons, args, _ in module_inputs(case)[:8]:
        m = make(case, **cons).double()
        m2 = pickle.loads(pickle.dumps(m))
        assert_equal(m(*args), m2(*args))


def test_save_load_state_dict(case):
    """state_dict save/load into a fresh module and into the torch module (same keys, same
    order), the round trip test_modules.py's serialization tests rely on."""
    for cons, args, _ in module_inputs(case)[:8]:
        m = make(case, **cons).double()
        buf = io.BytesIO()
        torch.save(m.state_dict(), buf)
        buf.seek(0)
        state = torch.load(buf)
        m2 = make(case, **cons).double()
        m2.load_state_dict(state)
        ref = make((case[0], "nn"), **cons).double()
        ref.load_state_dict(state)
        assert list(state) == list(ref.state_dict())
        assert_equal(m(*args), m2(*args))
        assert_equal(m(*args), ref(*args))


def test_non_contiguous_tensors(case):
    """test/test_modules.py::TestModule::test_non_contiguous_tensors: non-contiguous inputs,
    states and grad outputs give the same outputs and gradients as contiguous ones."""

    def noncontig(t):
        return torch.stack([t.detach().clone().zero_(), t.detach()], -1).select(-1, 1)

    def leaf(a, transform):
        if isinstance(a, tuple):
            return tuple(leaf(s, transform) for s in a)
        return transform(a).requires_grad_()

    for cons, args, _ in module_inputs(case)[:8]:
        m = make(case, **cons).double()
        results = []
        for transform in (lambda t: t.detach().clone(), noncontig):
            inputs = [leaf(a, transform) for a in args]
            leaves = [t for a in inputs for t in flat(a)]
            m.zero_grad()
            out, h = m(*inputs)
            outs = [out, *flat(h)]
            torch.autograd.backward(outs, [transform(torch.ones_like(o)) for o in outs])
            results.append(
                outs + [i.grad for i in leaves] + [p.grad.clone() for p in m.parameters()]
            )
        for a, b in zip(*results, strict=True):
            assert_equal(a, b)


def _grad_inputs(case, every=5):
    for cons, args, _ in module_inputs(case)[::every]:
        m = make(case, **cons).double()
        params = tuple(m.parameters())
        names = [n for n, _ in m.named_parameters()]
        structure = [len(a) if isinstance(a, tuple) else 0 for a in args]
        leaves = tuple(t for a in args for t in flat(a))

        def fn(*tensors, m=m, names=names, structure=structure, n=len(leaves)):  # noqa: B008
            inputs, weights, i = [], tensors[n:], 0
            for k in structure:
                inputs.append(tuple(tensors[i : i + k]) if k else tensors[i])
                i += k or 1
            out, h = torch.func.functional_call(
                m, dict(zip(names, weights, strict=True)), tuple(inputs)
            )
            return (out, *flat(h))

        yield fn, leaves + params


def test_grad(case):
    """test/test_modules.py::TestModule::test_grad: gradcheck in float64 w.r.t. inputs,
    states and parameters, fast mode with the batched-grad check on (every 5th sample)."""
    for fn, inputs in _grad_inputs(case):
        assert gradcheck(fn, inputs, check_batched_grad=True, fast_mode=True)


def test_gradgrad(case):
    """test/test_modules.py::TestModule::test_gradgrad: gradgradcheck in float64, fast mode
    with the batched-grad check (every 8th sample: two per mode)."""
    for fn, inputs in _grad_inputs(case, every=8):
        assert gradgradcheck(fn, inputs, check_batched_grad=True, fast_mode=True)


def test_to(case):
    """test/test_modules.py::TestModule::test_to: ``module.to(dtype)`` converts every
    parameter in place (same Parameter objects)."""
    m = make(case, 2, 3, 2, bidirectional=True)
    before = [id(p) for p in m.parameters()]
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        m.to(dtype)
        assert all(p.dtype == dtype for p in m.parameters())
    assert [id(p) for p in m.parameters()] == before
    m.to(torch.float64)
    out, h = m(torch.randn(3, 2, dtype=torch.float64))
    assert out.dtype == torch.float64 and all(s.dtype == torch.float64 for s in flat(h))


def test_if_train_and_eval_modes_differ(case):
    """test/test_modules.py::TestModule::test_if_train_and_eval_modes_differ (nn.LSTM and
    nn.GRU are ``train_and_eval_differ=True``: dropout); the flag reaches every submodule."""
    m = make(case, 2, 3, 2, dropout=0.5)
    assert m.training
    m.eval()
    assert not m.training and all(not c.training for c in m.modules())
    m.train()
    assert all(c.training for c in m.modules())


def test_empty_batch(case):
    """test/test_nn.py::TestNN::test_RNN_input_size_zero over every configuration of the
    samples: a batch of 0, forward and backward, states of batch 0."""
    for cons, _, b_f in module_inputs(case)[::2]:
        m = make(case, **cons).double()
        x = torch.randn((0, 3, 2) if b_f else (3, 0, 2), dtype=torch.float64, requires_grad=True)
        out, h = m(x)
        d = 2 if cons["bidirectional"] else 1
        hs = cons["hidden_size"]
        assert out.shape == ((0, 3, d * hs) if b_f else (3, 0, d * hs))
        assert all(s.shape == (2 * d, 0, hs) for s in flat(h))
        (out.sum() + sum(s.sum() for s in flat(h))).backward()
        assert x.grad.shape == x.shape


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cpu_gpu_parity(case):
    """test/test_modules.py::TestModule::test_cpu_gpu_parity (float64 and float32, TF32 off)."""

    def to_cuda(a):
        # PackedSequence is a namedtuple: it must be caught before the (h, c) tuple case.
        if isinstance(a, rnn_utils.PackedSequence):
            return a.to("cuda")
        if isinstance(a, tuple):
            return tuple(to_cuda(s) for s in a)
        return a.detach().cuda().requires_grad_()

    with no_tf32():
        for dtype in (torch.float64, torch.float32):
            for cons, args, _ in module_inputs(case, dtype, packed=True)[::3]:
                m = make(case, **cons).to(dtype)
                m_gpu = copy.deepcopy(m).cuda()
                out, h = m(*args)
                out_gpu, h_gpu = m_gpu(*[to_cuda(a) for a in args])
                tol = {} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}
                out = out.data if isinstance(out, rnn_utils.PackedSequence) else out
                out_gpu = out_gpu.data if isinstance(out_gpu, rnn_utils.PackedSequence) else out_gpu
                assert_equal(out, out_gpu.cpu(), **tol)
                for a, b in zip(flat(h), flat(h_gpu), strict=True):
                    assert_equal(a, b.cpu(), **tol)


# --------------------------------------------------------------------------------------
# The error table (docs/elman_rnn_contract.md, "LSTM and GRU") and
# common_modules.py::module_error_inputs_torch_nn_RNN_GRU, via test_modules.py::test_errors
# --------------------------------------------------------------------------------------


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


def _hc(h, c):
    return (_x(*h), _x(*c))


#: (id, modes, build-and-run, torch's exception type, torch's message; a pair =
#: (torch's, seqmodels') where torch's is an accident of its implementation)
ERROR_TABLE = [
    # common_modules.py::module_error_inputs_torch_nn_RNN_GRU (ModuleInfo of LSTM and GRU)
    ("hidden_size=0", "LG", lambda M: M(10, 0, 1), ValueError,
     "hidden_size must be greater than zero"),
    ("num_layers=0", "LG", lambda M: M(10, 10, 0), ValueError,
     "num_layers must be greater than zero"),
    ("input dtype", "LG", lambda M: M(3, 5)(_x(2, 4, 3, dtype=torch.float64)), ValueError,
     "RNN input dtype (torch.float64) does not match weight dtype (torch.float32). "
     "Convert input: input.to(torch.float32), or convert model: model.to(torch.float64)"),
    ("bias=0", "LG", lambda M: M(3, 5, bias=0), TypeError, "bias should be of type bool, got: int"),
    ("bias=1", "LG", lambda M: M(3, 5, bias=1), TypeError, "bias should be of type bool, got: int"),
    ("bias=str", "LG", lambda M: M(3, 5, bias="True"), TypeError,
     "bias should be of type bool, got: str"),
    ("batch_first=0", "LG", lambda M: M(3, 5, batch_first=0), TypeError,
     "batch_first should be of type bool, got: int"),
    ("batch_first=str", "LG", lambda M: M(3, 5, batch_first="False"), TypeError,
     "batch_first should be of type bool, got: str"),
    ("input_size=float", "LG", lambda M: M(3.0, 5), TypeError,
     "input_size should be of type int, got: float"),
    ("input_size=0", "LG", lambda M: M(0, 5), ValueError, "input_size must be greater than zero"),
    ("hidden_size=float", "LG", lambda M: M(3, 5.0), TypeError,
     "hidden_size should be of type int, got: float"),
    ("dropout>1", "LG", lambda M: M(3, 5, 2, dropout=1.5), ValueError,
     "dropout should be a number in range [0, 1]"),
    # proj_size
    ("GRU proj_size", "G", lambda M: M(30, 20, 2, proj_size=10), ValueError,
     "proj_size argument is only supported for LSTM, not RNN or GRU"),
    ("GRU proj_size=0", "G", lambda M: M(30, 20, proj_size=0), ValueError,
     "proj_size argument is only supported for LSTM, not RNN or GRU"),
    ("proj_size<0", "L", lambda M: M(3, 5, proj_size=-1), ValueError,
     "proj_size should be a positive integer or zero to disable projections"),
    ("proj_size>=hidden_size", "L", lambda M: M(3, 5, proj_size=5), ValueError,
     "proj_size has to be smaller than hidden_size"),
    ("proj_size>0", "L", lambda M: M(3, 5, proj_size=2), None, None),
    ("proj_size=float", "L", lambda M: M(3, 5, proj_size=2.0), TypeError,
     ("argument 'size' failed to unpack", "proj_size should be of type int, got: float (2.0)")),
    # forward: input
    ("input 4-D", "L", lambda M: M(3, 5)(_x(1, 2, 3, 3)), ValueError,
     "LSTM: Expected input to be 2D or 3D, got 4D instead"),
    ("input 1-D", "G", lambda M: M(3, 5)(_x(3)), ValueError,
     "GRU: Expected input to be 2D or 3D, got 1D instead"),
    ("input size", "LG", lambda M: M(3, 5)(_x(2, 4, 7)), RuntimeError,
     "input.size(-1) must be equal to input_size. Expected 3, got 7"),
    ("zero time steps", "LG", lambda M: M(3, 5)(_x(0, 4, 3)), RuntimeError,
     "Expected sequence length to be larger than 0 in RNN"),
    # forward: GRU hx
    ("GRU hx batch", "G", lambda M: M(3, 5, 2)(_x(6, 4, 3), _x(2, 7, 5)), RuntimeError,
     "Expected hidden size (2, 4, 5), got [2, 7, 5]"),
    ("GRU batched input, 2-D hx", "G", lambda M: M(3, 5, 2)(_x(6, 4, 3), _x(2, 5)), RuntimeError,
     "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    ("GRU hx tuple", "G", lambda M: M(3, 5)(_x(2, 4, 3), (_x(1, 4, 5),)), (AttributeError,
     TypeError),
     ("'tuple' object has no attribute 'dim'", "Expected the state to be a Tensor, got tuple")),
    # forward: LSTM (h_0, c_0)
    ("h_0 size", "L", lambda M: M(3, 5, 2)(_x(6, 4, 3), _hc((2, 4, 7), (2, 4, 5))), RuntimeError,
     "Expected hidden[0] size (2, 4, 5), got [2, 4, 7]"),
    ("h_0 layers", "L", lambda M: M(3, 5, 2)(_x(6, 4, 3), _hc((3, 4, 5), (2, 4, 5))), RuntimeError,
     "Expected hidden[0] size (2, 4, 5), got [3, 4, 5]"),
    ("c_0 size", "L", lambda M: M(3, 5, 2)(_x(6, 4, 3), _hc((2, 4, 5), (2, 4, 7))), RuntimeError,
     "Expected hidden[1] size (2, 4, 5), got [2, 4, 7]"),
    ("c_0 batch", "L", lambda M: M(3, 5, 2)(_x(6, 4, 3), _hc((2, 4, 5), (2, 7, 5))), RuntimeError,
     "Expected hidden[1] size (2, 4, 5), got [2, 7, 5]"),
    ("input batch", "L", lambda M: M(3, 5, 2)(_x(6, 7, 3), _hc((2, 4, 5), (2, 4, 5))), RuntimeError,
     "Expected hidden[0] size (2, 7, 5), got [2, 4, 5]"),
    ("unbatched h_0 size", "L", lambda M: M(3, 5, 2)(_x(6, 3), _hc((3, 5), (2, 5))), RuntimeError,
     ("Expected hidden[0] size (2, 1, 5), got [3, 1, 5]",
     "Expected hidden[0] size (2, 5), got [3, 5]")),
    ("unbatched c_0 size", "L", lambda M: M(3, 5, 2)(_x(6, 3), _hc((2, 5), (2, 7))), RuntimeError,
     ("Expected hidden[1] size (2, 1, 5), got [2, 1, 7]",
     "Expected hidden[1] size (2, 5), got [2, 7]")),
    ("batched input, 2-D h_0", "L", lambda M: M(3, 5, 2)(_x(6, 4, 3), _hc((2, 5), (2, 4, 5))),
     RuntimeError,
     "For batched 3-D input, hx and cx should also be 3-D but got (2-D, 3-D) tensors"),
    ("batched input, 2-D c_0", "L", lambda M: M(3, 5, 2)(_x(6, 4, 3), _hc((2, 4, 5), (2, 5))),
     RuntimeError,
     "For batched 3-D input, hx and cx should also be 3-D but got (3-D, 2-D) tensors"),
    ("unbatched input, 3-D hx", "L", lambda M: M(3, 5, 2)(_x(6, 3), _hc((2, 1, 5), (2, 1, 5))),
     RuntimeError,
     "For unbatched 2-D input, hx and cx should also be 2-D but got (3-D, 3-D) tensors"),
    ("hx a Tensor", "L", lambda M: M(3, 5, 2)(_x(6, 4, 3), _x(2, 4, 5)), RuntimeError,
     ("For batched 3-D input, hx and cx should also be 3-D but got (2-D, 2-D) tensors",
      "Expected the state to be a tuple of 2 Tensors, got Tensor")),
    ("hx 1-tuple", "L", lambda M: M(3, 5)(_x(2, 4, 3), (_x(1, 4, 5),)), (IndexError, TypeError),
     ("tuple index out of range", "Expected the state to be a tuple of 2 Tensors, got tuple")),
    ("hx 3-tuple", "L", lambda M: M(3, 5)(_x(2, 4, 3), (_x(1, 4, 5),) * 3), RuntimeError,
     ("lstm expects two hidden states",
     "Expected the state to be a tuple of 2 Tensors, got tuple")),
    ("c_0 dtype", "L", lambda M: M(3, 5)(_x(2, 4, 3), (_x(1, 4, 5), _x(1, 4, 5,
     dtype=torch.float64))),
     RuntimeError, ("",  # torch: its kernel's dtype error, wording depends on the backend
                    "RNN hx dtype (torch.float64) does not match weight dtype (torch.float32)")),
]  # fmt: skip
ERROR_ROWS = [
    pytest.param(mode, row, id=f"{mode}-{row[0]}")
    for row in ERROR_TABLE
    for mode in ("LSTM", "GRU")
    if mode[0] in row[1]
]


@pytest.mark.parametrize("impl", ["nn", "bptt", "autograd"])
@pytest.mark.parametrize("mode,row", ERROR_ROWS)
def test_errors(mode, row, impl):
    """test/test_modules.py::TestModule::test_errors over
    common_modules.py::module_error_inputs_torch_nn_RNN_GRU (the error inputs of nn.LSTM and
    nn.GRU), extended to the "LSTM and GRU" error table of docs/elman_rnn_contract.md: torch's
    exception type and wording (where a pair is given: torch's, then seqmodels', when torch's
    is an accident of its implementation; ``None``: no error)."""
    _, _, build, exc_type, message = row
    index = 0 if impl == "nn" else 1
    if isinstance(exc_type, tuple):
        exc_type = exc_type[index]
    if isinstance(message, tuple):
        message = message[index]

    def M(*args, **kwargs):  # noqa: N802 - stands for the module class
        return make((mode, impl), *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if message is None:
            build(M)
            return
        with pytest.raises(exc_type or ValueError) as info:
            build(M)
    assert message in str(info.value)
    if impl != "nn":  # seqmodels' errors also satisfy callers that catch ValueError
        assert isinstance(info.value, ValueError)


def test_dropout_warning(case):
    """nn.LSTM / nn.GRU warn (UserWarning) for dropout > 0 with one layer; error table row."""
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        make(case, 3, 5, dropout=0.5)


def test_bidirectional_not_bool(case):
    """Deliberate deviation shared with ElmanRNN (docs/elman_rnn_contract.md): torch takes
    any truthy ``bidirectional``; seqmodels raises TypeError."""
    if case[1] == "nn":
        assert make(case, 3, 5, bidirectional="False").bidirectional == "False"
        return
    with pytest.raises(TypeError, match="bidirectional should be of type bool, got: str"):
        make(case, 3, 5, bidirectional="False")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_errors_device(case):
    """Device rows of the error table (test/test_nn.py::TestNN::test_rnn_check_device)."""
    m = make(case, 3, 5)
    with pytest.raises(RuntimeError, match="Input and parameter tensors are not at the same"):
        m(torch.randn(2, 4, 3, device="cuda"))
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same"):
        m(torch.randn(2, 4, 3), state_of(case, torch.randn(1, 4, 5, device="cuda")))


@pytest.mark.parametrize("impl", ["nn", "bptt", "autograd"])
def test_lstm_accepts_a_list_state_like_nn_lstm(impl):
    """nn.LSTM indexes ``hx``, so ``[h_0, c_0]`` works there; the drop-in accepts it too."""
    torch.manual_seed(0)
    lstm = make(("LSTM", impl), 3, 5)
    x, h, c = torch.randn(2, 4, 3), torch.randn(1, 4, 5), torch.randn(1, 4, 5)
    out_list, (h_list, c_list) = lstm(x, [h, c])
    out_tuple, (h_tuple, c_tuple) = lstm(x, (h, c))
    torch.testing.assert_close(out_list, out_tuple)
    torch.testing.assert_close((h_list, c_list), (h_tuple, c_tuple))
