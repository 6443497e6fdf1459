"""The compiled time loops of the LSTM/GRU BPTT kernels (seqmodels/kernels/compiled.py).

They must build wherever a C++ compiler is (CI included), compute what the Python loops
compute (outputs, final states, every gradient; padded, reversed, batch 1 and batches large
enough for the BLAS path), and fall back to the Python loops with a warning, never silently
and never with different values, where they cannot be built.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from kernel_functions import gru_bptt, lstm_bptt

import seqmodels
from seqmodels.kernels import compiled, gated

HAS_COMPILER = shutil.which("c++") is not None or shutil.which("g++") is not None


def test_extension_builds_where_a_compiler_is(monkeypatch):
    if not HAS_COMPILER:
        pytest.skip("no C++ compiler on this machine: the Python loops run instead")
    monkeypatch.delenv("SEQMODELS_COMPILED", raising=False)
    module = compiled.extension()
    assert module is not None, compiled.failure()
    assert compiled.usable(torch.zeros(1), torch.zeros(1)) is module
    assert compiled.usable(torch.zeros(1, dtype=torch.float64)) is module


def test_only_cpu_float32_and_float64_use_it():
    assert compiled.usable(torch.zeros(1, dtype=torch.bfloat16)) is None
    assert compiled.usable(torch.zeros(1), torch.zeros(1, dtype=torch.float64)) is None
    with compiled.use_compiled(False):
        assert compiled.usable(torch.zeros(1)) is None


def _run(cls, dtype, batch, hidden, lengths, bidirectional, enabled):
    torch.manual_seed(0)
    module = cls(7, hidden, num_layers=2, bidirectional=bidirectional, backend="bptt").to(dtype)
    x = torch.randn(9, batch, 7, dtype=dtype, requires_grad=True)
    if lengths is not None:
        x_in = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    else:
        x_in = x
    with compiled.use_compiled(enabled):
        out, state = module(x_in)
        if lengths is not None:
            out = torch.nn.utils.rnn.pad_packed_sequence(out)[0]
        states = state if isinstance(state, tuple) else (state,)
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=dtype)).sum()
        loss = loss + sum((s**2).sum() for s in states)
        loss.backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    return out, states, x.grad, grads


@pytest.mark.parametrize("cls", [seqmodels.LSTM, seqmodels.GRU], ids=["lstm", "gru"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    ("batch", "hidden"),
    [(1, 16), (5, 8), (24, 48)],
    ids=["batch1", "small", "blas"],  # the last one's step GEMMs go to BLAS
)
@pytest.mark.parametrize("layout", ["dense", "packed", "bidirectional"])
def test_compiled_loops_match_python_loops(cls, dtype, batch, hidden, layout):
    if compiled.usable(torch.zeros(1, dtype=dtype)) is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    lengths = None
    if layout == "packed":
        lengths = torch.randint(1, 10, (batch,), generator=torch.Generator().manual_seed(batch))
        lengths[0] = 9
    bidirectional = layout == "bidirectional"
    fast = _run(cls, dtype, batch, hidden, lengths, bidirectional, True)
    slow = _run(cls, dtype, batch, hidden, lengths, bidirectional, False)
    torch.testing.assert_close(fast[0], slow[0])
    torch.testing.assert_close(fast[1], slow[1])
    torch.testing.assert_close(fast[2], slow[2])
    for name in slow[3]:
        torch.testing.assert_close(fast[3][name], slow[3][name], msg=name)


@pytest.fixture
def threads():
    """``threads(k)`` sets torch's intra-op threads for the test; restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


# The LSTM loops split the batch into row blocks of 8 rows, one per thread, when there are at
# least 8 rows per thread: uneven blocks (21 rows), one thread, three threads; hidden 80
# gives a backward GEMM deeper than one panel (4H = 320 > 256) and columns left over (80).
# Hidden 192 (W_hh over 512 KB) runs as one block on ATen's GEMM with the element-wise pass
# and the bias gradient's columns split over the threads.
@pytest.mark.parametrize("num_threads", [1, 2, 3])
@pytest.mark.parametrize(
    ("batch", "hidden"), [(21, 20), (40, 80), (24, 192)], ids=["uneven", "deep", "wide"]
)
@pytest.mark.parametrize("layout", ["dense", "packed", "bidirectional"])
@pytest.mark.parametrize("chunk_steps", [None, 2], ids=["one-chunk", "2-step-chunks"])
def test_lstm_row_block_threads_match_python_loops(
    monkeypatch, threads, num_threads, batch, hidden, layout, chunk_steps
):
    if compiled.usable(torch.zeros(1)) is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    threads(num_threads)
    if chunk_steps:  # 9 steps: chunks of 2, 2, 2, 2, 1
        monkeypatch.setattr(gated, "CHUNK_BYTES", chunk_steps * batch * 4 * hidden * 4)
    lengths = None
    if layout == "packed":
        lengths = torch.randint(1, 10, (batch,), generator=torch.Generator().manual_seed(batch))
        lengths[0] = 9
    bidirectional = layout == "bidirectional"
    fast = _run(seqmodels.LSTM, torch.float32, batch, hidden, lengths, bidirectional, True)
    slow = _run(seqmodels.LSTM, torch.float32, batch, hidden, lengths, bidirectional, False)
    for a, b in zip(fast[:3], slow[:3], strict=True):
        torch.testing.assert_close(a, b)
    for name in slow[3]:
        torch.testing.assert_close(fast[3][name], slow[3][name], msg=name)


@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="torch built without MKL")
def test_which_step_weights_are_packed(threads):
    """One block of steps on BLAS with a weight of 512 KiB or more: packed once per call.
    Row blocks, float64 and small weights keep their own GEMMs."""
    ext = compiled.extension()
    if ext is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    threads(2)
    assert ext.pack_step_weight(torch.randn(192, 768), 24) is not None  # one block (> 512 KiB)
    assert ext.pack_step_weight(torch.randn(256, 768), 24, row_blocks=False) is not None  # GRU
    assert ext.pack_step_weight(torch.randn(80, 320), 40) is None  # row blocks
    assert ext.pack_step_weight(torch.randn(128, 384), 32, row_blocks=False) is None  # small
    assert ext.pack_step_weight(torch.randn(192, 768, dtype=torch.float64), 24) is None


# A two-layer training step packs where expected (LSTM: each layer's forward and backward;
# GRU: forward and the backward's r, z rows, not its n rows: 256 KiB) and computes what
# the Python loops compute.
@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="torch built without MKL")
@pytest.mark.parametrize(
    ("cls", "hidden", "pattern"),
    [
        (seqmodels.LSTM, 192, [True] * 4),
        (seqmodels.GRU, 256, [True, True, True, False, True, False]),
    ],
    ids=["lstm", "gru"],
)
@pytest.mark.parametrize("layout", ["dense", "packed", "bidirectional"])
def test_packed_step_weights_give_the_python_loops_values(
    monkeypatch, threads, cls, hidden, pattern, layout
):
    ext = compiled.extension()
    if ext is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    threads(2)
    packed, pack = [], ext.pack_step_weight

    def spy(*args, **kwargs):
        result = pack(*args, **kwargs)
        packed.append(result is not None)
        return result

    monkeypatch.setattr(ext, "pack_step_weight", spy)
    lengths = torch.tensor([9, 3, 7, 1] * 6) if layout == "packed" else None
    bidirectional = layout == "bidirectional"
    fast = _run(cls, torch.float32, 24, hidden, lengths, bidirectional, True)
    assert packed == (pattern * 2 if bidirectional else pattern) or (
        bidirectional and sorted(packed) == sorted(pattern * 2)
    )
    slow = _run(cls, torch.float32, 24, hidden, lengths, bidirectional, False)
    for a, b in zip(fast[:3], slow[:3], strict=True):
        torch.testing.assert_close(a, b)
    for name in slow[3]:
        torch.testing.assert_close(fast[3][name], slow[3][name], msg=name)


# The backward loop reads the output gradient in place, whatever its strides: a sum's (one
# value broadcast), a broadcast row, every other step, and a bidirectional layer's halves.
LOSSES = {
    "sum": lambda out: out.sum(),
    "row": lambda out: (out * torch.linspace(-1, 1, out.shape[-1])).sum(),
    "strided": lambda out: (out[::2] ** 2).sum(),
}


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("batch", [3, 24], ids=["one-block", "row-blocks"])
def test_lstm_output_gradient_of_any_layout(loss, bidirectional, batch):
    if compiled.usable(torch.zeros(1)) is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    results = []
    for enabled in (True, False):
        torch.manual_seed(0)
        lstm = seqmodels.LSTM(5, 16, bidirectional=bidirectional, backend="bptt")
        x = torch.randn(6, batch, 5, requires_grad=True)
        with compiled.use_compiled(enabled):
            LOSSES[loss](lstm(x)[0]).backward()
        results.append([x.grad, *(p.grad for p in lstm.parameters())])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)


def _layer_inputs(gates_per_step, batch=3, steps=6, hidden=4, features=5, seed=1):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    x, h0 = rand(steps, batch, features), rand(batch, hidden)
    weights = (
        rand(gates_per_step * hidden, features),
        rand(gates_per_step * hidden, hidden),
        rand(gates_per_step * hidden),
        rand(gates_per_step * hidden),
    )
    return x, h0, rand(batch, hidden), weights


# Padded batches are never reversed by the kernel (the layer reverses them per sequence).
CASES = pytest.mark.parametrize(
    ("lengths", "reverse"),
    [(None, False), (None, True), (torch.tensor([6, 2, 4]), False)],
    ids=["dense", "reverse", "padded"],
)


# The compiled LSTM backward walks time in chunks of gated.CHUNK_BYTES of deltas: one chunk
# (the default at these sizes), one step per chunk, and 4 + 2 steps (3 rows x 16 x 8 bytes).
LSTM_CHUNKS = pytest.mark.parametrize(
    "chunk_bytes", [gated.CHUNK_BYTES, 1, 4 * 3 * 16 * 8], ids=["one-chunk", "1-step", "4-step"]
)


@LSTM_CHUNKS
@CASES
def test_compiled_lstm_gradcheck(monkeypatch, chunk_bytes, lengths, reverse):
    if compiled.usable(torch.zeros(1, dtype=torch.float64)) is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    monkeypatch.setattr(gated, "CHUNK_BYTES", chunk_bytes)
    x, h0, c0, weights = _layer_inputs(4)
    assert torch.autograd.gradcheck(
        lambda *t: lstm_bptt(*t, lengths, reverse), (x, h0, c0, *weights)
    )


@CASES
def test_compiled_gru_gradcheck(lengths, reverse):
    if compiled.usable(torch.zeros(1, dtype=torch.float64)) is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    x, h0, _, weights = _layer_inputs(3)
    assert torch.autograd.gradcheck(lambda *t: gru_bptt(*t, lengths, reverse), (x, h0, *weights))


@pytest.fixture
def unbuilt(monkeypatch):
    """The loader as before its first use, with a build that fails."""

    def no_compiler():
        raise OSError("no C++ compiler found (test)")

    monkeypatch.setattr(compiled, "_module", None)
    monkeypatch.setattr(compiled, "_failure", None)
    monkeypatch.setattr(compiled, "_build", no_compiler)
    monkeypatch.delenv("SEQMODELS_COMPILED", raising=False)
    return monkeypatch


def test_failed_build_warns_once_and_runs_the_python_loops(unbuilt):
    lstm = seqmodels.LSTM(3, 4, backend="bptt")
    x = torch.randn(5, 2, 3)
    with pytest.warns(RuntimeWarning, match="could not be built.*no C\\+\\+ compiler found"):
        out, _ = lstm(x)
    assert "no C++ compiler found" in compiled.failure()
    with compiled.use_compiled(False):
        expected, _ = lstm(x)
    torch.testing.assert_close(out, expected)


def test_required_build_that_fails_is_an_error(unbuilt):
    unbuilt.setenv("SEQMODELS_COMPILED", "1")
    with pytest.raises(RuntimeError, match="SEQMODELS_COMPILED=1.*no C\\+\\+ compiler found"):
        seqmodels.GRU(3, 4, backend="bptt")(torch.randn(5, 2, 3))


def test_env_switch_off_and_bad_value(monkeypatch):
    monkeypatch.setenv("SEQMODELS_COMPILED", "0")
    assert compiled.extension() is None
    monkeypatch.setenv("SEQMODELS_COMPILED", "yes please")
    with pytest.raises(ValueError, match="SEQMODELS_COMPILED must be 0, 1 or auto; got"):
        compiled.extension()


# The row-block threads call ATen (their GEMMs). Grad mode is per thread and on in a fresh
# OpenMP thread, so an mm there with a parameter recorded a graph node, which under
# detect_anomaly waits for the GIL its caller holds: `experiment=char_lm
# model/encoder=lstm` hung in backward. In a subprocess, so that a hang fails, not blocks.
ANOMALY_SCRIPT = """
import torch, seqmodels
torch.set_num_threads(2)
lstm = seqmodels.LSTM(5, 16, num_layers=2, backend="bptt")
x = torch.randn(6, 24, 5, requires_grad=True)
with torch.autograd.detect_anomaly():
    lstm(x)[0].sum().backward()
print("done", bool(x.grad.abs().sum() > 0))
"""


def test_lstm_backward_on_row_block_threads_under_detect_anomaly():
    if compiled.usable(torch.zeros(1)) is None:
        pytest.skip(f"compiled loops unavailable: {compiled.failure()}")
    result = subprocess.run(
        [sys.executable, "-c", ANOMALY_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["done", "True"]
