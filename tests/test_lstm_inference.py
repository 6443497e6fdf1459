"""The LSTM's no-grad forward (seqmodels/kernels/lstm_inference.py).

Without autograd the LSTM runs its steps in cache-sized chunks and keeps no gates or cell
states. It must give what the training path gives (outputs and final states; dense, packed,
bidirectional, reversed; chunks of one step, uneven chunks, one chunk), and run only where
nothing can be differentiated: never when a gradient is wanted, under a transform or with a
forward-mode dual.
"""

from __future__ import annotations

import pytest
import torch
from kernel_functions import NAMES, lstm_definition
from torch.autograd import forward_ad
from torch.nn.utils import rnn as rnn_utils

import seqmodels
from seqmodels.kernels import compiled, lstm_inference, run_kernel

pytestmark = pytest.mark.skipif(
    compiled.usable(torch.zeros(1)) is None, reason="compiled loops unavailable here"
)

# Bytes per chunk: the default, one step per chunk, and 3 steps of the (N=5, H=6) batch
# below (so 9 steps end with a shorter chunk).
CHUNKS = pytest.mark.parametrize(
    "chunk_bytes", [lstm_inference.CHUNK_BYTES, 1, 3 * 5 * 24 * 8], ids=["default", "1", "3"]
)


@pytest.fixture
def calls(monkeypatch):
    """Counts calls of the inference path."""
    seen = []
    real = lstm_inference.lstm_inference

    def counted(*args):
        seen.append(args)
        return real(*args)

    monkeypatch.setattr(lstm_inference, "lstm_inference", counted)
    return seen


@CHUNKS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["dense", "packed", "bidirectional"])
def test_no_grad_forward_matches_the_training_path(monkeypatch, calls, chunk_bytes, dtype, layout):
    monkeypatch.setattr(lstm_inference, "CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(0)
    lstm = seqmodels.LSTM(
        4, 6, num_layers=2, bidirectional=layout == "bidirectional", backend="bptt"
    )
    lstm = lstm.to(dtype)
    x = torch.randn(9, 5, 4, dtype=dtype)
    if layout == "packed":
        x = rnn_utils.pack_padded_sequence(x, torch.tensor([9, 3, 7, 1, 5]), enforce_sorted=False)
    trained_out, (trained_h, trained_c) = lstm(x)  # parameters require grad: training path
    assert not calls
    with torch.no_grad():
        out, (h, c) = lstm(x)
    assert len(calls) == 2 * (2 if layout == "bidirectional" else 1)  # every layer, direction
    if layout == "packed":
        out, trained_out = out.data, trained_out.data
    torch.testing.assert_close(out, trained_out)
    torch.testing.assert_close(h, trained_h)
    torch.testing.assert_close(c, trained_c)


@CHUNKS
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_kernel_with_initial_state(monkeypatch, chunk_bytes, reverse):
    """The kernel itself, time walked both ways, from a non-zero (h0, c0)."""
    monkeypatch.setattr(lstm_inference, "CHUNK_BYTES", chunk_bytes)
    g = torch.Generator().manual_seed(3)
    x, h0, c0 = (
        torch.randn(*s, generator=g, dtype=torch.float64) for s in [(9, 5, 3), (5, 6), (5, 6)]
    )
    weights = [
        torch.randn(*s, generator=g, dtype=torch.float64) for s in [(24, 3), (24, 6), (24,), (24,)]
    ]
    expected = lstm_definition(x, h0, c0, *weights, None, reverse)
    got = lstm_inference.lstm_inference(x, h0, c0, *weights, None, reverse)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_padded_sequences_end_in_different_chunks(monkeypatch):
    """c_n of each sequence is read in the chunk where that sequence ends."""
    monkeypatch.setattr(lstm_inference, "CHUNK_BYTES", 2 * 4 * 16 * 4)  # 2 steps per chunk
    g = torch.Generator().manual_seed(5)
    x, h0, c0 = (torch.randn(*s, generator=g) for s in [(7, 4, 3), (4, 4), (4, 4)])
    weights = [torch.randn(*s, generator=g) for s in [(16, 3), (16, 4), (16,), (16,)]]
    lengths = torch.tensor([7, 1, 4, 6])
    expected = lstm_definition(x, h0, c0, *weights, lengths, False)
    got = lstm_inference.lstm_inference(x, h0, c0, *weights, lengths, False)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_taken_only_when_nothing_is_differentiated(calls):
    lstm = seqmodels.LSTM(3, 4, backend="bptt")
    x = torch.randn(5, 2, 3)
    lstm(x)  # parameters require grad
    assert not calls
    with torch.inference_mode():
        lstm(x)
    assert len(calls) == 1
    with torch.no_grad():
        lstm(x.requires_grad_())
    assert len(calls) == 2
    lstm.requires_grad_(False)
    out, _ = lstm(x)  # the input still wants a gradient
    assert len(calls) == 2 and out.requires_grad
    out, _ = lstm(x.detach())  # nothing wants one
    assert len(calls) == 3 and not out.requires_grad


def test_not_taken_for_forward_mode_duals_or_transforms():
    x, h0, c0 = torch.randn(5, 2, 3), torch.zeros(2, 4), torch.zeros(2, 4)
    weights = [torch.randn(16, 3), torch.randn(16, 4), torch.zeros(16), torch.zeros(16)]
    with torch.no_grad(), forward_ad.dual_level():
        dual = forward_ad.make_dual(x, torch.ones_like(x))
        assert not lstm_inference.applies((dual, h0, c0, *weights))
        assert lstm_inference.applies((x, h0, c0, *weights))

    cell = seqmodels.LSTMCell(3, 4, device="meta")  # built outside vmap: init draws randoms
    named = dict(zip(NAMES, weights, strict=True))

    def run(inp):
        assert not lstm_inference.applies((inp, h0, c0, *weights))
        return run_kernel(cell, inp, (h0, c0), named)[0]

    torch.func.vmap(run, in_dims=1, out_dims=1)(x.unsqueeze(1).expand(5, 3, 2, 3))


def test_empty_batch_and_other_dtypes_take_the_training_path():
    weights = [torch.randn(16, 3), torch.randn(16, 4), torch.zeros(16), torch.zeros(16)]
    with torch.no_grad():
        empty = torch.randn(5, 0, 3), torch.zeros(0, 4), torch.zeros(0, 4)
        assert not lstm_inference.applies((*empty, *weights))
        half = [t.bfloat16() for t in (torch.randn(5, 2, 3), torch.zeros(2, 4), torch.zeros(2, 4))]
        assert not lstm_inference.applies((*half, *(w.bfloat16() for w in weights)))
