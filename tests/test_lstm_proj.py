"""``seqmodels.LSTM(proj_size=P)`` against ``torch.nn.LSTM(proj_size=P)``: an LSTM with
projections (``h_t = W_hr (o * tanh(c_t))``) on every backend.

Two parts. PyTorch's own tests of LSTM projections, ported: each keeps its upstream name and
cites its source (``test/test_nn.py``, ``torch/testing/_internal/common_modules.py``) and runs
for ``impl`` in ``nn.LSTM`` (the control, which must pass too) and each seqmodels backend.
Then seqmodels' own checks: parity of outputs, ``h_n``, ``c_n`` and every gradient with
``nn.LSTM`` in float64 (weights copied), state dicts and conversion both ways, parameter
names and order, initialisation, errors, the cell on the engine (``gradcheck`` and
``gradgradcheck``), and the torch idioms (autocast, ``torch.func``, weight norm).
"""

from __future__ import annotations

import copy
import io
import re
from itertools import product

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck
from torch.nn.utils import rnn as rnn_utils
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import seqmodels
from seqmodels.cells.gated import LSTMCell, LSTMPCell
from seqmodels.kernels import kernel_for, run_kernel
from seqmodels.kernels.engine import engine_kernel

BACKENDS = ["bptt", "autograd", "torch", "auto"]
IMPLS = ["nn", *BACKENDS]
MULTI_GPU = torch.cuda.device_count() >= 2

# torch warns on every CPU call of an LSTM with projections that oneDNN has none.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


def make(impl: str, *args, **kwargs) -> nn.Module:
    """nn.LSTM, or seqmodels.LSTM on one backend, from the same arguments."""
    if impl == "nn":
        return nn.LSTM(*args, **kwargs)
    return seqmodels.LSTM(*args, backend=impl, **kwargs)


def copy_of(ref: nn.LSTM, backend: str) -> seqmodels.LSTM:
    ours = seqmodels.LSTM.from_torch(ref, backend=backend)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    return ours


# --- ported: test/test_nn.py ------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_projections_lstm_args_check(impl):
    """test/test_nn.py::TestNN::test_projections_lstm_args_check: every wrong input or state
    shape raises a RuntimeError."""
    input_size, hidden_size, proj_size, num_layers = 3, 5, 2, 2
    batch_size, seq_len, num_directions = 4, 6, 1
    bad_size = 7  # prime, so that no size divides it

    def check(input_shape, hidden_h_shape, hidden_c_shape):
        model = make(impl, input_size, hidden_size, num_layers, proj_size=proj_size)
        input = torch.randn(input_shape)
        hidden = (torch.randn(hidden_h_shape), torch.randn(hidden_c_shape))
        with pytest.raises(RuntimeError):
            model(input, hidden)

    correct_input = (seq_len, batch_size, input_size)
    correct_h = (num_layers * num_directions, batch_size, proj_size)
    correct_c = (num_layers * num_directions, batch_size, hidden_size)

    def update(shape, dim, size):
        shape = list(shape)
        shape[dim] = size
        return tuple(shape)

    check(update(correct_input, 1, bad_size), correct_h, correct_c)  # input batch size
    check(correct_input, update(correct_h, 1, bad_size), update(correct_c, 1, bad_size))
    check(update(correct_input, 2, bad_size), correct_h, correct_c)  # input size
    check(correct_input, update(correct_h, 2, bad_size), update(correct_c, 2, bad_size))
    check(correct_input, update(correct_h, 0, bad_size), update(correct_c, 0, bad_size))
    check(correct_input, update(correct_h, 0, hidden_size), correct_c)  # proj size = hidden
    check(correct_input, update(correct_h, 0, bad_size), correct_c)  # proj size != hidden
    check(correct_input, correct_h, update(correct_c, 0, bad_size))  # cell size != hidden


@pytest.mark.gpu
@pytest.mark.skipif(not MULTI_GPU, reason="needs two CUDA devices")
@pytest.mark.parametrize("impl", IMPLS)
def test_projections_lstm_check_device(impl):
    """test/test_nn.py::TestNN::test_projections_lstm_check_device."""
    model = make(impl, 3, 5, 2, proj_size=2)
    input = torch.randn(6, 4, 3)
    hidden_h, hidden_c = torch.randn(2, 4, 2), torch.randn(2, 4, 5)
    with pytest.raises(
        RuntimeError, match="Input and parameter tensors are not at the same device"
    ):
        model(input.to("cuda:0"))
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same device"):
        model(input, (hidden_h.to("cuda:0"), hidden_c.to("cuda:0")))
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same device"):
        model(input.to("cuda:0"), (hidden_h.to("cuda:0"), hidden_c.to("cuda:1")))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_projections_lstm_initial_hidden_state(impl, bidirectional):
    """test/test_nn.py::TestNN::test_projections_lstm_initial_hidden_state (batch 32 -> 4):
    zeros given as ``(h_0, c_0)`` and no state give the same results."""
    rnn = make(impl, 30, 20, 2, bidirectional=bidirectional, proj_size=10)
    dirs = 2 if bidirectional else 1
    input = torch.randn(10, 4, 30)
    hidden = (torch.zeros(2 * dirs, 4, 10), torch.zeros(2 * dirs, 4, 20))
    output1, hidden1 = rnn(input, hidden)
    output2, hidden2 = rnn(input)
    torch.testing.assert_close(output1, output2)
    torch.testing.assert_close(hidden1, hidden2)


@pytest.mark.parametrize("impl", IMPLS)
def test_cudnn_forward_exception(impl):
    """test/test_nn.py::TestNN::test_cudnn_forward_exception, its ``proj_size=10`` entry."""
    rnn = make(impl, 10, 20, batch_first=True, proj_size=10)
    hidden = (torch.zeros(1, 2, 19), torch.zeros(1, 2, 19))
    x_wrong, x_right = torch.randn(2, 3, 3), torch.randn(2, 3, 10)
    with pytest.raises(RuntimeError, match="Expected hidden.*size.*got"):
        rnn(x_right, hidden)
    with pytest.raises(RuntimeError, match=re.escape("input.size(-1) must be equal to input_size")):
        rnn(x_wrong)


def _make_noncontig(tensor):
    ndim = tensor.dim()
    return torch.stack([tensor.clone().zero_(), tensor], ndim).select(ndim, 1)


CPU_VS_CUDNN = list(product((True, False), repeat=6))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "bias, bidirectional, batch_first, contig, variable_len, lens_as_tensor",
    CPU_VS_CUDNN[::2],  # every other of the 64 (each factor still both ways): CPU time
)
def test_RNN_cpu_vs_cudnn_projections(
    backend, bias, bidirectional, batch_first, contig, variable_len, lens_as_tensor
):
    """test/test_nn.py::TestNN::_test_RNN_cpu_vs_cudnn, its "LSTM with projections" loop
    (float64, dropout 0): upstream runs the same weights on the CPU and on cuDNN; here the
    reference is nn.LSTM and the other side seqmodels.LSTM on ``backend``, both on the CPU.
    Outputs, h_n, c_n and the gradients of the input, h_0, c_0 and every weight."""
    dtype = torch.double
    input_size, hidden_size, proj_size, num_layers, seq_length, batch = 10, 6, 3, 2, 7, 6
    dirs = 2 if bidirectional else 1
    if batch_first:
        input_val = torch.randn(batch, seq_length, input_size, dtype=dtype)
        grad_output = torch.randn(batch, seq_length, proj_size * dirs, dtype=dtype)
    else:
        input_val = torch.randn(seq_length, batch, input_size, dtype=dtype)
        grad_output = torch.randn(seq_length, batch, proj_size * dirs, dtype=dtype)
    hx_val = torch.randn(num_layers * dirs, batch, proj_size, dtype=dtype)
    cx_val = torch.randn(num_layers * dirs, batch, hidden_size, dtype=dtype)
    grad_hy = torch.randn(num_layers * dirs, batch, proj_size, dtype=dtype)
    grad_cy = torch.randn(num_layers * dirs, batch, hidden_size, dtype=dtype)
    if not contig:
        grad_output, grad_hy, grad_cy = map(_make_noncontig, (grad_output, grad_hy, grad_cy))
        input_val, hx_val, cx_val = map(_make_noncontig, (input_val, hx_val, cx_val))
    if variable_len:
        lengths = [7, 5, 5, 2, 1, 1]
        if lens_as_tensor:
            lengths = torch.tensor(lengths, dtype=torch.long)
        input_val = rnn_utils.pack_padded_sequence(input_val, lengths, batch_first=batch_first)
        grad_output = rnn_utils.pack_padded_sequence(
            grad_output, lengths, batch_first=batch_first
        ).data

    def forward_backward(rnn):
        if isinstance(input_val, rnn_utils.PackedSequence):
            input = rnn_utils.PackedSequence(
                input_val.data.detach().clone().requires_grad_(True), input_val.batch_sizes
            )
            input_var = input.data
        else:
            input = input_var = input_val.clone().requires_grad_(True)
        hx = (hx_val.clone().requires_grad_(True), cx_val.add(1).requires_grad_(True))
        output, hy = rnn(input, hx)
        if isinstance(output, rnn_utils.PackedSequence):
            output = output.data
        torch.autograd.backward([output, hy[0], hy[1]], [grad_output, grad_hy, grad_cy + 1])
        return {
            "output": output,
            "hy": hy[0],
            "cy": hy[1],
            "grad_input": input_var.grad,
            "grad_hx": hx[0].grad,
            "grad_cx": hx[1].grad,
            "weights": [[w.grad for w in layer] for layer in rnn.all_weights],
        }

    kwargs = {"bias": bias, "bidirectional": bidirectional, "batch_first": batch_first}
    ref = nn.LSTM(input_size, hidden_size, num_layers, proj_size=proj_size, **kwargs).to(dtype)
    ours = copy_of(ref, backend)
    expected, got = forward_backward(ref), forward_backward(ours)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=5e-5, rtol=0, msg=key)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["weight_hr_l0", "weight_hh_l0"])
def test_RNN_cudnn_weight_norm(impl, name):
    """test/test_nn.py::TestNN::test_RNN_cudnn_weight_norm, its ``proj_size=3`` module, on
    the CPU: weight norm on ``weight_hr_l0`` (and ``weight_hh_l0``) leaves the output as it
    was, and so does removing it."""
    m = make(impl, 10, 6, 2, proj_size=3)
    input = torch.randn(7, 6, 10)
    expected = m(input)
    m = torch.nn.utils.weight_norm(m, name=name)
    torch.testing.assert_close(m(input), expected)
    m = torch.nn.utils.remove_weight_norm(m, name=name)
    torch.testing.assert_close(m(input), expected)


# --- ported: common_modules.py::module_inputs_torch_nn_LSTM, its proj_size=2 samples ----------


def _no_batch_dim_reference_lstm(m, input, hx, batch_first):
    """common_modules.py::no_batch_dim_reference_lstm: the unbatched call equals the batched
    call on a batch of one, squeezed."""
    batch_dim = 0 if batch_first else 1
    if hx is not None:
        hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
    output, (h, c) = m(input.unsqueeze(batch_dim), hx)
    return output.squeeze(batch_dim), (h.squeeze(1), c.squeeze(1))


LSTM_SAMPLES = [
    (bias, batch_first, bidirectional, with_hx)
    for bias, batch_first, bidirectional in product((False, True), repeat=3)
    for with_hx in (False, True)
]


def _sample(bias, batch_first, bidirectional, with_hx, dtype=torch.double):
    """One ``proj_size=2`` sample: constructor arguments and an unbatched forward input."""
    kwargs = {
        "input_size": 2,
        "hidden_size": 3,
        "num_layers": 2,
        "proj_size": 2,
        "batch_first": batch_first,
        "bias": bias,
        "bidirectional": bidirectional,
    }
    slots = 4 if bidirectional else 2
    if not with_hx:
        return kwargs, torch.randn(2, 2, dtype=dtype), None
    hx = (torch.randn(slots, 2, dtype=dtype), torch.randn(slots, 3, dtype=dtype))
    return kwargs, torch.randn(3, 2, dtype=dtype), hx


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bias, batch_first, bidirectional, with_hx", LSTM_SAMPLES)
def test_forward(impl, bias, batch_first, bidirectional, with_hx):
    """test/test_modules.py::TestModule::test_forward over the ``proj_size=2`` samples of
    module_inputs_torch_nn_LSTM (float64): each unbatched call against its reference_fn,
    and against nn.LSTM with the same weights."""
    kwargs, input, hx = _sample(bias, batch_first, bidirectional, with_hx)
    m = make(impl, **kwargs).double()
    output, (h, c) = m(input, hx)
    ref_output, (ref_h, ref_c) = _no_batch_dim_reference_lstm(m, input, hx, batch_first)
    torch.testing.assert_close((output, h, c), (ref_output, ref_h, ref_c))
    slots, h_out = (4 if bidirectional else 2), 2
    assert output.shape == (input.shape[0], h_out * (2 if bidirectional else 1))
    assert h.shape == (slots, h_out) and c.shape == (slots, 3)
    if impl != "nn":
        torch.testing.assert_close(m.to_torch()(input, hx), (output, (h, c)))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bias, batch_first, bidirectional, with_hx", LSTM_SAMPLES[1::2])
def test_grad_and_gradgrad(impl, bias, batch_first, bidirectional, with_hx):
    """test/test_modules.py::TestModule::test_grad and test_gradgrad over the ``proj_size=2``
    samples with a state (float64): gradcheck and gradgradcheck with respect to the input,
    h_0, c_0 and every parameter (gradgradcheck in fast mode, as upstream)."""
    kwargs, input, hx = _sample(bias, batch_first, bidirectional, with_hx)
    m = make(impl, **kwargs).double()
    params = dict(m.named_parameters())
    names = list(params)

    def fn(input, h, c, *weights):
        out, (h_n, c_n) = torch.func.functional_call(
            m, dict(zip(names, weights, strict=True)), (input, (h, c))
        )
        return out, h_n, c_n

    leaves = [t.detach().requires_grad_(True) for t in (input, *hx, *params.values())]
    assert gradcheck(fn, leaves, check_batched_grad=False)
    assert gradgradcheck(fn, leaves, fast_mode=True, check_batched_grad=False)


# --- parity with nn.LSTM(proj_size) -----------------------------------------------------------

LENGTHS = [7, 3, 5, 1]
CONFIGS = {
    "plain": {},
    "deep": {"num_layers": 2},
    "bi": {"bidirectional": True},
    "deep-bi-bf": {"num_layers": 2, "bidirectional": True, "batch_first": True},
    "nobias": {"bias": False},
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["full", "lengths", "packed"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_nn_lstm(backend, layout, config):
    """Outputs, h_n, c_n and the gradients of x, h_0, c_0 and every weight (weight_hr
    included) equal nn.LSTM(proj_size=2)'s in float64, weights copied."""
    config = CONFIGS[config]
    ref = nn.LSTM(3, 5, proj_size=2, **config).double()
    ours = copy_of(ref, backend)
    batch_first = config.get("batch_first", False)
    slots = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    x = torch.randn(7, 4, 3, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(slots, 4, 2, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(slots, 4, 5, dtype=torch.double, requires_grad=True)
    inp = x.transpose(0, 1) if batch_first else x

    def pack():  # one packing per module: each backward frees its own graph
        return pack_padded_sequence(inp, LENGTHS, batch_first=batch_first, enforce_sorted=False)

    if layout == "packed":
        ref_out, ref_state = ref(pack(), (h0, c0))
        out, state = ours(pack(), (h0, c0))
        ref_out, out = ref_out.data, out.data
    elif layout == "lengths":
        ref_out, ref_state = ref(pack(), (h0, c0))
        ref_out = pad_packed_sequence(ref_out, batch_first=batch_first, total_length=7)[0]
        out, state = ours(inp, (h0, c0), lengths=LENGTHS)
    else:
        ref_out, ref_state = ref(inp, (h0, c0))
        out, state = ours(inp, (h0, c0))
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(state, ref_state)
    assert state[0].shape == (slots, 4, 2) and state[1].shape == (slots, 4, 5)
    weights = torch.randn_like(out)

    def loss(o, s):
        return (o * weights).sum() + s[0].sin().sum() + s[1].cos().sum()

    leaves = [x, h0, c0]
    expected = torch.autograd.grad(loss(ref_out, ref_state), leaves + list(ref.parameters()))
    got = torch.autograd.grad(loss(out, state), leaves + list(ours.parameters()))
    names = ["x", "h0", "c0"] + [n for n, _ in ours.named_parameters()]
    for name, a, b in zip(names, got, expected, strict=True):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_state_and_unbatched_input(backend):
    ref = nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4).double()
    ours = copy_of(ref, backend)
    x = torch.randn(5, 3, dtype=torch.double)
    out, (h, c) = ours(x)
    assert out.shape == (5, 8) and h.shape == (4, 4) and c.shape == (4, 6)
    torch.testing.assert_close((out, (h, c)), ref(x))


# --- the module's shape: parameters, state dicts, conversion, initialisation, errors -----------


def test_parameters_named_ordered_and_shaped_as_nn_lstm():
    ours = seqmodels.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4)
    ref = nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, p.shape) for n, p in ref.named_parameters()
    ]
    assert ours._flat_weights_names == ref._flat_weights_names
    assert [[w.shape for w in layer] for layer in ours.all_weights] == [
        [w.shape for w in layer] for layer in ref.all_weights
    ]
    assert ours.weight_hr_l1_reverse is ours.cell(1, 1).weight_hr
    assert ours.proj_size == 4 and ours.hidden_size == 6
    assert isinstance(ours.cell(0), LSTMPCell) and ours.cell(1).input_size == 8
    no_bias = seqmodels.LSTM(3, 6, bias=False, proj_size=2)
    assert [n for n, _ in no_bias.named_parameters()] == [
        "weight_ih_l0",
        "weight_hh_l0",
        "weight_hr_l0",
    ]


def test_a_module_without_projections_has_no_weight_hr():
    lstm = seqmodels.LSTM(3, 6)
    assert lstm.proj_size == 0 and isinstance(lstm.cell(0), LSTMCell)
    assert not hasattr(lstm, "weight_hr_l0")
    assert "weight_hr_l0" not in lstm.state_dict()


def test_state_dicts_load_both_ways_and_conversions_round_trip():
    ours = seqmodels.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4)
    ref = nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)
    fresh = nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4)
    ours.load_state_dict(fresh.state_dict())
    for a, b in zip(ours.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    assert ours.cell(1, 1).weight_hr is ours.weight_hr_l1_reverse  # one object, two names
    converted = ours.to_torch()
    assert type(converted) is nn.LSTM and converted.proj_size == 4
    back = seqmodels.LSTM.from_torch(converted, backend="bptt")
    assert back.proj_size == 4 and back.backend == "bptt"
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(back(x), converted(x))
    # the cells' own paths load too
    composed = {
        "layers.0.forward_layer.cell.weight_hr": torch.zeros(4, 6),
        **{k: v for k, v in ours.state_dict().items() if k != "weight_hr_l0"},
    }
    ours.load_state_dict(composed)
    assert torch.equal(ours.weight_hr_l0, torch.zeros(4, 6))


def test_repr_names_proj_size():
    assert "proj_size=4" in repr(seqmodels.LSTM(3, 6, proj_size=4))
    assert "proj_size" not in seqmodels.LSTM(3, 6).extra_repr()


def test_default_initialisation_draws_what_nn_lstm_draws():
    torch.manual_seed(3)
    ours = seqmodels.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4)
    torch.manual_seed(3)
    ref = nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("init", ["forget_bias", "orthogonal"])
def test_other_initialisations(init):
    lstm = seqmodels.LSTM(3, 6, proj_size=4, init=init)
    weight_hr = lstm.weight_hr_l0
    if init == "forget_bias":
        assert torch.equal(lstm.bias_ih_l0[6:12], torch.ones(6))
        assert weight_hr.abs().max() <= 1 / 6**0.5
    else:  # orthonormal rows
        torch.testing.assert_close(weight_hr @ weight_hr.t(), torch.eye(4))
    lstm.reset_parameters()
    assert lstm.weight_hr_l0 is weight_hr


def test_proj_size_errors_match_nn_lstm():
    for module in (nn.LSTM, seqmodels.LSTM):
        with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
            module(3, 5, proj_size=5)
        with pytest.raises(ValueError, match="proj_size should be a positive integer or zero"):
            module(3, 5, proj_size=-1)
        with pytest.raises(TypeError):
            module(3, 5, proj_size=2.0)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        seqmodels.GRU(3, 5, proj_size=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_shape_errors_word_as_nn_lstm(backend):
    ours = seqmodels.LSTM(3, 5, 2, proj_size=2, backend=backend)
    ref = nn.LSTM(3, 5, 2, proj_size=2)
    x = torch.randn(6, 4, 3)
    for h_shape, c_shape in [
        ((2, 4, 5), (2, 4, 5)),
        ((2, 4, 2), (2, 4, 2)),
        ((1, 4, 2), (2, 4, 5)),
    ]:
        state = (torch.zeros(h_shape), torch.zeros(c_shape))
        with pytest.raises(RuntimeError) as expected:
            ref(x, state)
        with pytest.raises(RuntimeError, match=re.escape(str(expected.value))):
            ours(x, state)


def test_resolution_offers_torch_and_the_engine():
    lstm = seqmodels.LSTM(3, 6, proj_size=2)
    assert lstm._why_not_torch() is None
    assert lstm.resolved_backend(torch.randn(4, 2, 3)) in ("bptt", "torch")
    # the projected cell runs on the generic engine, never on the LSTMCell's fast forms
    assert kernel_for(lstm.cell(0)) is engine_kernel
    assert kernel_for(LSTMCell(3, 6)) is not engine_kernel


def test_pickle_round_trip():
    lstm = seqmodels.LSTM(3, 6, proj_size=2, num_layers=2)
    buffer = io.BytesIO()
    torch.save(lstm, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(loaded(x), lstm(x))
    clone = copy.deepcopy(lstm)
    assert clone.weight_hr_l1 is clone.cell(1).weight_hr


# --- the cell on the engine -------------------------------------------------------------------


def test_cell_step_matches_one_step_of_nn_lstm():
    cell = LSTMPCell(4, 6, proj_size=3)
    ref = nn.LSTM(4, 6, proj_size=3)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
        assert getattr(cell, name).shape == getattr(ref, name + "_l0").shape
    ref.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x, h, c = torch.randn(2, 4), torch.randn(2, 3), torch.randn(2, 6)
    out, (h1, c1) = cell(x, (h, c))
    _, (h_ref, c_ref) = ref(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
    torch.testing.assert_close((out, h1, c1), (h_ref[0], h_ref[0], c_ref[0]))
    assert cell.output_size == 3 and cell.recurrent_size == 3


def test_cell_refuses_bad_proj_sizes():
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        LSTMPCell(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size"):
        LSTMPCell(3, 4, proj_size=0)
    with pytest.raises(TypeError, match="proj_size"):
        LSTMPCell(3, 4, proj_size=1.5)


@pytest.mark.parametrize(
    "lengths, reverse",
    [(None, False), (None, True), ([5, 2, 4], False)],
    ids=["fwd", "rev", "padded"],
)
def test_engine_gradcheck_and_gradgradcheck(lengths, reverse):
    """gradcheck and gradgradcheck (float64) of the engine on LSTMPCell, with respect to the
    input, h_0, c_0 and all five weights: the derived step derivative, weight_hr's gradient
    included, and the double backward through the out-of-place walk."""
    cell = LSTMPCell(3, 4, proj_size=2).double()
    names = [n for n, _ in cell.named_parameters()]
    lens = None if lengths is None else torch.tensor(lengths)
    x = torch.randn(5, 3, 3, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(3, 2, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    weights = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]

    def fn(x, h0, c0, *weights):
        out, (h, c) = run_kernel(
            cell, x, (h0, c0), dict(zip(names, weights, strict=True)), lens, reverse
        )
        return out, h, c

    inputs = (x, h0, c0, *weights)
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_engine_matches_the_step_loop_on_the_cell():
    cell = LSTMPCell(3, 5, proj_size=2)
    x = torch.randn(6, 2, 3)
    results = []
    for backend in ("bptt", "autograd"):
        layer = seqmodels.Recurrent(cell, backend=backend)
        out, (h, c) = layer(x, lengths=[6, 3])
        grads = torch.autograd.grad(out.sum() + h.sum() + c.sum(), list(cell.parameters()))
        results.append((out, h, c, grads))
    torch.testing.assert_close(results[0], results[1])


# --- torch idioms ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_runs_in_the_autocast_dtype(backend):
    lstm = seqmodels.LSTM(3, 5, proj_size=2, num_layers=2, backend=backend)
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h, c) = lstm(x)
    assert out.dtype == h.dtype == c.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), lstm(x)[0], atol=5e-2, rtol=5e-2)
    out.float().sum().backward()
    assert lstm.weight_hr_l0.grad.dtype == torch.float32


@pytest.mark.parametrize("backend", ["bptt", "autograd"])  # torch's kernel: no vmap rule
def test_vmap_and_func_grad(backend):
    lstm = seqmodels.LSTM(3, 5, proj_size=2, backend=backend)
    ref = lstm.to_torch()
    xs = torch.randn(3, 6, 2, 3)
    ours = torch.func.vmap(lambda x: lstm(x)[1][0])(xs)
    torch.testing.assert_close(ours, torch.stack([ref(x)[1][0] for x in xs]))
    params = dict(lstm.named_parameters())

    def loss(params, x):
        return torch.func.functional_call(lstm, params, (x,))[0].pow(2).sum()

    grads = torch.func.grad(loss)(params, xs[0])
    expected = torch.autograd.grad(ref(xs[0])[0].pow(2).sum(), list(ref.parameters()))
    for (name, g), r in zip(grads.items(), expected, strict=True):
        torch.testing.assert_close(g, r, msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_are_contiguous_like_nn_lstm(backend):
    lstm = seqmodels.LSTM(3, 5, proj_size=2, num_layers=2, bidirectional=True, backend=backend)
    out, (h, c) = lstm(torch.randn(5, 2, 3))
    grads = torch.autograd.grad(out.sum() + h.sum() + c.sum(), list(lstm.parameters()))
    for (name, _), grad in zip(lstm.named_parameters(), grads, strict=True):
        assert grad.is_contiguous(), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_padding_holding_nan_changes_nothing(backend):
    lstm = seqmodels.LSTM(3, 5, proj_size=2, bidirectional=True, backend=backend)
    clean = torch.randn(6, 3, 3)
    lengths = [6, 2, 4]
    dirty = clean.clone()
    for n, length in enumerate(lengths):
        dirty[length:, n] = float("nan")
    results = []
    for x in (clean, dirty):
        x = x.clone().requires_grad_(True)
        out, (h, c) = lstm(x, lengths=lengths)
        grads = torch.autograd.grad(out.sum() + h.sum() + c.sum(), [x, *lstm.parameters()])
        results.append((out, h, c, grads[1:]))
    torch.testing.assert_close(results[1], results[0])


def test_torch_backend_passes_weight_hr_to_torchs_kernel():
    """backend="torch" runs torch's kernel with weight_hr in its flat weights: a change of
    weight_hr changes the output as it changes nn.LSTM's."""
    lstm = seqmodels.LSTM(3, 5, proj_size=2, backend="torch")
    ref = lstm.to_torch()
    with torch.no_grad():
        lstm.weight_hr_l0.mul_(2)
        ref.weight_hr_l0.mul_(2)
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(lstm(x), ref(x))
    assert lstm._flat_weights[-1] is lstm.weight_hr_l0
