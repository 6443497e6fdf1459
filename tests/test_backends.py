"""Backends: ``torch`` (torch's fused kernels over our parameters), ``auto`` and its resolution.

The resolution is a pure function of a :class:`CallTraits`, so every row of it (CUDA and
the deterministic flag included) is tested here on any machine. The ``torch`` backend is
held to ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (outputs, states, every gradient) on the CPU;
the ported upstream suites (``test_torch_*_ported.py``) and the gated parity suite also run
on ``torch`` and ``auto``. ONNX export is checked by evaluating the exported graph with
``onnx.reference`` at two sequence lengths from one export.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import replace

import pytest
import torch
from rnn_parity import MODES, run_parity
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqmodels import GRU, LSTM, ElmanRNN, LSTMCell, Recurrent, RecurrentCell
from seqmodels.layers.backends import (
    BACKENDS,
    CPU_TORCH_FASTER,
    CallTraits,
    resolve_backend,
)

CUDA = torch.cuda.is_available()

CPU_CALL = CallTraits(
    requested="auto",
    torch_mode="LSTM",
    has_kernel=True,
    why_not_torch=None,
    device_type="cpu",
    dtype=torch.float32,
    batch_size=32,
    hidden_size=128,
    cpu_capability="AVX512",
    vendor="GenuineIntel",
    needs_grad=True,
)


def resolve(**changes) -> str:
    return resolve_backend(replace(CPU_CALL, **changes)).backend


# --- the resolution, row by row ----------------------------------------------------------


def test_explicit_backends_force_their_path():
    for device in ("cpu", "cuda"):
        assert resolve(requested="torch", device_type=device) == "torch"
        assert resolve(requested="bptt", device_type=device) == "bptt"
        assert resolve(requested="autograd", device_type=device) == "autograd"


def test_explicit_backend_that_cannot_run_raises_naming_why():
    with pytest.raises(ValueError, match="backend='torch' cannot run this module: a user cell"):
        resolve(requested="torch", torch_mode=None, why_not_torch="a user cell")
    with pytest.raises(ValueError, match="needs a hand-written BPTT"):
        resolve(requested="bptt", has_kernel=False)
    with pytest.raises(ValueError, match="unknown backend 'cudnn'"):
        resolve(requested="cudnn")


def test_auto_on_cuda_is_torch():
    assert resolve(device_type="cuda") == "torch"
    assert resolve(device_type="cuda", dtype=torch.float64, torch_mode="GRU") == "torch"
    assert resolve(device_type="cuda", deterministic=True) == "torch", "no dropout: cuDNN is"


def test_auto_on_other_accelerators_is_torch():
    assert resolve(device_type="mps") == "torch"


def test_auto_under_deterministic_algorithms_avoids_cudnn_dropout(caplog):
    with caplog.at_level(logging.DEBUG, logger="seqmodels.backends"):
        resolution = resolve_backend(
            replace(CPU_CALL, device_type="cuda", deterministic=True, dropout_active=True)
        )
    assert resolution.backend == "bptt" and "nondeterministic" in resolution.reason
    assert "leaves torch's kernel" in caplog.text
    no_kernel = replace(
        CPU_CALL, device_type="cuda", deterministic=True, dropout_active=True, has_kernel=False
    )
    assert resolve_backend(no_kernel).backend == "autograd"


def test_auto_for_what_torch_cannot_run_is_the_engine_or_the_loop():
    assert resolve(torch_mode=None, why_not_torch="a user cell") == "bptt"
    assert resolve(torch_mode=None, why_not_torch="a user cell", has_kernel=False) == "autograd"
    assert resolve(torch_mode=None, why_not_torch="x", device_type="cuda") == "bptt"


def test_auto_when_exporting_is_torch_or_the_unrolled_loop():
    assert resolve(exporting=True) == "torch"
    assert resolve(exporting=True, torch_mode=None, why_not_torch="a user cell") == "autograd"
    with pytest.raises(ValueError, match="backend='bptt' cannot be exported.*'auto' or 'torch'"):
        resolve(requested="bptt", exporting=True)
    with pytest.raises(ValueError, match="export with backend='autograd'"):
        resolve(requested="bptt", exporting=True, torch_mode=None, why_not_torch="x")


def test_torch_export_of_bptt_records_the_kernels_ops():
    export = {"exporting": True, "compiling": True}
    assert resolve(requested="bptt", traceable=True, **export) == "bptt"
    assert resolve(torch_mode=None, why_not_torch="x", traceable=True, **export) == "bptt"
    assert resolve(traceable=True, **export) == "torch", "torch's op: any runtime knows it"
    with pytest.raises(ValueError, match="cannot be exported"):
        resolve(requested="bptt", traceable=True, exporting=True)  # ONNX, torch.jit.trace


def test_auto_inside_torch_compile():
    """The eager choice, where the kernels are ops: they run the eager loops (the CPU table's
    torch rows stay torch's, whose decomposition still beats bptt there); else the step
    loop, which Dynamo traces whole."""
    compiling = {"compiling": True}
    assert resolve(traceable=True, **compiling) == "bptt"
    avx2 = {"cpu_capability": "AVX2", "vendor": "AuthenticAMD"}
    assert resolve(traceable=True, **avx2, **compiling) == resolve(**avx2) == "torch"
    assert resolve(torch_mode=None, why_not_torch="x", traceable=True, **compiling) == "bptt"
    assert resolve(torch_mode=None, why_not_torch="a user cell", **compiling) == "autograd"
    gpu = {"device_type": "cuda", "torch_mode": None, "why_not_torch": "x", "traceable": True}
    assert resolve(**gpu, **compiling) == "autograd", "the ops are the CPU's loops"
    assert resolve(traceable=True, device_type="cuda", **compiling) == "torch"
    assert resolve(requested="bptt", compiling=True) == "bptt", "graph breaks, as asked"
    padded = {"padded": True, **avx2, **compiling}
    assert resolve(traceable=True, **padded) == "bptt", "packing cannot be traced"
    assert resolve(device_type="cuda", **padded) == "autograd"


def test_auto_on_the_cpu_is_bptt_outside_the_table():
    assert resolve(cpu_capability="DEFAULT") == "bptt"
    assert resolve(torch_mode="RNN_TANH", cpu_capability="AVX2") == "bptt"


@pytest.mark.parametrize("rule", CPU_TORCH_FASTER, ids=lambda r: f"{r.mode}-{r.capability}")
def test_every_cpu_table_row_routes_to_torch_and_only_there(rule):
    call = replace(
        CPU_CALL,
        torch_mode=rule.mode,
        cpu_capability=rule.capability,
        vendor=rule.vendor or "AnyVendor",
        dtype=rule.dtype,
        batch_size=rule.min_batch,
        hidden_size=rule.min_hidden,
        needs_grad=rule.training if rule.training is not None else True,
    )
    resolution = resolve_backend(call)
    assert resolution.backend == "torch" and rule.measured in resolution.reason
    assert rule.measured.strip(), "every row says what was measured"
    assert resolve_backend(replace(call, batch_size=rule.min_batch - 1)).backend == "bptt"
    assert resolve_backend(replace(call, cpu_capability="DEFAULT")).backend == "bptt"
    if rule.min_hidden > 0:
        smaller = replace(call, hidden_size=rule.min_hidden - 1)
        assert resolve_backend(smaller).backend == "bptt" or _another_rule(rule, smaller)
    if rule.max_hidden is not None:
        larger = replace(call, hidden_size=rule.max_hidden)
        assert resolve_backend(larger).backend == "bptt" or _another_rule(rule, larger)
    assert resolve_backend(replace(call, dtype=torch.float64)).backend == "bptt"
    other = "RNN_TANH" if rule.mode != "RNN_TANH" else "GRU"
    assert resolve_backend(replace(call, torch_mode=other)).backend in ("bptt", "torch")
    if rule.training is not None:
        flipped = replace(call, needs_grad=not rule.training)
        assert resolve_backend(flipped).backend == "bptt" or _another_rule(rule, flipped)
    if rule.vendor is not None:
        elsewhere = replace(call, vendor="OtherVendor")
        assert resolve_backend(elsewhere).backend == "bptt" or _another_rule(rule, elsewhere)


def _another_rule(rule, call) -> bool:
    """Whether a row other than ``rule`` sends ``call`` to torch."""
    return any(other is not rule and other.matches(call) for other in CPU_TORCH_FASTER)


# --- the modules' traits -----------------------------------------------------------------


def test_the_default_backend_is_auto_everywhere():
    for module in (ElmanRNN(3, 4), LSTM(3, 4), GRU(3, 4)):
        assert module.backend == "auto"
    assert Recurrent(LSTMCell(3, 4)).backend == "auto"


def test_resolved_backend_follows_the_call():
    lstm = LSTM(3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    traits = lstm._call_traits(x)
    assert traits.torch_mode == "LSTM" and traits.has_kernel and traits.batch_size == 2
    assert traits.dropout_active and not lstm.eval()._call_traits(x).dropout_active
    assert lstm.resolved_backend(x) == resolve_backend(traits).backend
    meta = torch.empty(5, 2, 3, device="meta")  # any device but the CPU
    assert lstm.resolved_backend(meta) == "torch"
    torch.use_deterministic_algorithms(True)
    try:
        assert lstm._call_traits(x).deterministic
    finally:
        torch.use_deterministic_algorithms(False)
    with torch.no_grad():
        assert not lstm._call_traits(x).needs_grad
    assert lstm._call_traits(x).needs_grad
    assert ElmanRNN(3, 4, nonlinearity="relu").torch_mode() == "RNN_RELU"


def test_every_backend_name_is_accepted_and_set_throughout():
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3)
    expected = lstm(x)
    for backend in BACKENDS:
        lstm.backend = backend
        assert lstm.backend == backend
        got = lstm(x)
        torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-6)
    inner = {m.backend for m in lstm.modules() if isinstance(m, Recurrent)}
    assert inner == {"auto"}, "torch/auto drop-ins leave their layers on auto"


def test_a_foreign_cell_is_refused_by_torch_and_routed_elsewhere_by_auto():
    class Peephole(LSTMCell):  # a subclass may change the step: torch's kernel must not run
        pass

    lstm = LSTM(3, 4)
    lstm.layers[0].cell = Peephole(3, 4)
    with pytest.raises(ValueError, match="runs a Peephole, not the LSTMCell"):
        lstm.backend = "torch"
    resolution = lstm.resolution(torch.randn(5, 2, 3))
    # Its definition runs on the engine (the LSTM's compiled form is for LSTMCell itself).
    assert resolution.backend == "bptt" and "Peephole" in resolution.reason


def test_a_recurrent_layer_refuses_torch():
    with pytest.raises(ValueError, match="backend of the drop-ins"):
        Recurrent(LSTMCell(3, 4), backend="torch")


# --- torch backend parity ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("layers", [(1, False), (2, True)], ids=["one-uni", "two-bi"])
def test_elman_torch_backend_matches_nn_rnn(layers, nonlinearity, mode, dtype):
    num_layers, bidirectional = layers
    run_parity(mode, num_layers, bidirectional, nonlinearity, True, dtype, backend="torch")


@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_stacked_with_dropout_in_eval_and_training(kind, backend):
    ours_class = {"RNN": ElmanRNN, "LSTM": LSTM, "GRU": GRU}[kind]
    torch.manual_seed(0)
    ref = getattr(nn, kind)(3, 5, num_layers=3, dropout=0.5).eval()
    ours = ours_class.from_torch(ref, backend=backend)
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    ours.train()
    a, b = ours(x)[0], ours(x)[0]
    assert not torch.equal(a, b), "dropout between layers is active in training"


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_torch_backend_padded_batch_ignores_padding_values(kind):
    ours_class = {"RNN": ElmanRNN, "LSTM": LSTM, "GRU": GRU}[kind]
    model = ours_class(3, 4, backend="torch")
    x = torch.randn(6, 3, 3)
    lengths = [6, 2, 4]
    poisoned = x.clone()
    for n, length in enumerate(lengths):
        poisoned[length:, n] = float("nan")
    out, state = model(poisoned, lengths=lengths)
    ref_out, ref_state = model(x, lengths=lengths)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(state, ref_state)
    assert out[2:, 1].abs().sum() == 0, "padded outputs are zero"


def test_torch_backend_gradients_land_on_the_cells_parameters():
    lstm = LSTM(3, 4, backend="torch")
    lstm(torch.randn(5, 2, 3))[0].sum().backward()
    assert lstm.layers[0].cell.weight_hh.grad is not None
    assert lstm.weight_hh_l0.grad is lstm.layers[0].cell.weight_hh.grad


def test_torch_backend_double_backward_on_the_cpu():
    torch.manual_seed(0)
    lstm = LSTM(2, 3, backend="torch").double()
    x = torch.randn(4, 2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: lstm(x)[0], (x,))


# --- export ------------------------------------------------------------------------------


class _Tagger(nn.Module):
    """A model holding a drop-in, as users export it."""

    def __init__(self, rnn: nn.Module, width: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(output)


def _export(model: nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (x,),
            buffer,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "T", 1: "N"}, "y": {0: "T", 1: "N"}},
        )
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ElmanRNN(3, 4, num_layers=2),
        lambda: ElmanRNN(3, 4, nonlinearity="relu", bidirectional=True),
        lambda: LSTM(3, 4, num_layers=2, bidirectional=True),
        lambda: GRU(3, 4, num_layers=2),
    ],
    ids=["elman-deep", "elman-relu-bi", "lstm-deep-bi", "gru-deep"],
)
def test_onnx_export_keeps_the_sequence_length_dynamic(make):
    """One export, evaluated at two lengths by onnxruntime (onnx's reference evaluator
    lacks the RNN operator's Relu activation), as torch's own modules export."""
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    rnn = make()
    model = _Tagger(rnn, rnn.hidden_size * rnn.num_directions).eval()
    reference = _Tagger(rnn.to_torch(), rnn.hidden_size * rnn.num_directions).eval()
    reference.head.load_state_dict(model.head.state_dict())
    ours = _export(model, torch.randn(7, 2, 3))
    assert len(ours) < 2 * len(_export(reference, torch.randn(7, 2, 3))), "one operator, as torch's"
    session = ort.InferenceSession(ours, providers=["CPUExecutionProvider"])
    for steps in (7, 13):
        x = torch.randn(steps, 2, 3)
        (got,) = session.run(None, {"x": x.numpy()})
        torch.testing.assert_close(torch.from_numpy(got), model(x), rtol=1e-4, atol=1e-5)


def test_onnx_export_of_bptt_names_the_alternative():
    pytest.importorskip("onnx")
    model = _Tagger(LSTM(3, 4, backend="bptt"), 4).eval()
    with pytest.raises(ValueError, match="cannot be exported.*backend='auto' or 'torch'"):
        _export(model, torch.randn(7, 2, 3))


def test_exporting_a_user_cell_warns_that_the_length_is_fixed():
    pytest.importorskip("onnx")

    class Leaky(RecurrentCell):
        def __init__(self):
            super().__init__(3, 4)
            self.linear = nn.Linear(7, 4)

        def forward(self, x_t, h):
            h = 0.5 * h + 0.5 * torch.tanh(self.linear(torch.cat([x_t, h], -1)))
            return h, h

    model = _Tagger(Recurrent(Leaky()), 4).eval()
    with pytest.warns(UserWarning, match="unrolled over T=7 steps"):
        buffer = io.BytesIO()
        torch.onnx.export(model, (torch.randn(7, 2, 3),), buffer, dynamo=False)


# --- checkpoints and GPU -----------------------------------------------------------------


def test_a_state_dict_loads_into_every_backend():
    torch.manual_seed(0)
    source = GRU(3, 4, num_layers=2, backend="torch")
    x = torch.randn(5, 2, 3)
    for backend in BACKENDS:
        target = GRU(3, 4, num_layers=2, backend=backend)
        target.load_state_dict(source.state_dict())
        torch.testing.assert_close(target(x)[0], source(x)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_cuda_auto_is_torch_and_matches_cudnn(kind):
    from seqmodels.diagnostics.precision import exact_float32

    ours_class = {"RNN": ElmanRNN, "LSTM": LSTM, "GRU": GRU}[kind]
    torch.manual_seed(0)
    ref = getattr(nn, kind)(3, 5, num_layers=2, bidirectional=True).cuda()
    ours = ours_class.from_torch(ref)
    x = torch.randn(7, 4, 3, device="cuda", requires_grad=True)
    assert ours.resolved_backend(x) == "torch"
    with exact_float32(), warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not part of single contiguous chunk" warning
        lengths = [7, 3, 5, 1]
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        ref_out = pad_packed_sequence(ref(packed)[0], total_length=7)[0]
        out = ours(x, lengths=lengths)[0]
        torch.testing.assert_close(out, ref_out)
        ref_grads = torch.autograd.grad(ref_out.sum(), [x, *ref.parameters()])
        grads = torch.autograd.grad(out.sum(), [x, *ours.parameters()])
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


# --- benchmark mode ----------------------------------------------------------------------


@pytest.fixture
def benchmark_mode(monkeypatch):
    from seqmodels.layers import backends

    monkeypatch.setattr(backends, "benchmark", True)
    monkeypatch.setattr(backends, "_benchmarked", {})
    return backends


def test_benchmark_mode_times_once_per_signature_and_changes_nothing(benchmark_mode):
    torch.manual_seed(0)
    lstm = LSTM(3, 4, num_layers=2, dropout=0.5)  # training: dropout draws random numbers
    x = torch.randn(6, 2, 3)
    torch.manual_seed(1)
    expected_draw = torch.rand(3)
    torch.manual_seed(1)
    resolution = lstm.resolution(x)  # times both paths, forward and backward
    torch.testing.assert_close(torch.rand(3), expected_draw, msg="the random state is restored")
    assert resolution.backend in ("torch", "bptt") and resolution.reason.startswith("benchmark")
    assert all(p.grad is None for p in lstm.parameters()), "timing accumulated no gradient"
    assert len(benchmark_mode._benchmarked) == 1
    lstm.eval()
    out = lstm(x)[0]
    assert len(benchmark_mode._benchmarked) == 2, "inference is a signature of its own"
    lstm(x)
    assert len(benchmark_mode._benchmarked) == 2, "the same signature is timed once"
    lstm(torch.randn(9, 2, 3))
    assert len(benchmark_mode._benchmarked) == 3, "a new length is a new signature"
    lstm.backend = "bptt"
    torch.testing.assert_close(out, lstm(x)[0], rtol=1e-5, atol=1e-6)


def test_benchmark_mode_leaves_explicit_backends_alone(benchmark_mode):
    gru = GRU(3, 4, backend="bptt")
    assert gru.resolution(torch.randn(5, 2, 3)).reason == "requested"
    assert not benchmark_mode._benchmarked
