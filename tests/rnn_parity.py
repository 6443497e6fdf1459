"""Shared parity harness: ElmanRNN against torch.nn.RNN with copied weights (both backends)."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqmodels import ElmanRNN

INPUT, HIDDEN, STEPS, BATCH = 4, 5, 6, 3
LENGTHS = [4, 6, 2]  # unsorted, with the longest not first
MODES = ["plain", "batch_first", "h0", "unbatched", "lengths", "packed"]


def tolerances(dtype):
    if dtype == torch.float64:
        return {"rtol": 1e-10, "atol": 1e-12}
    return {"rtol": 1e-5, "atol": 1e-6}


def run_parity(mode, num_layers, bidirectional, nonlinearity, bias, dtype, backend):
    batch_first = mode == "batch_first"
    ref = torch.nn.RNN(
        INPUT,
        HIDDEN,
        num_layers,
        nonlinearity,
        bias,
        batch_first,
        bidirectional=bidirectional,
        dtype=dtype,
    )
    ours = ElmanRNN.from_torch(ref, backend=backend)
    slots = num_layers * (2 if bidirectional else 1)

    shape = (STEPS, INPUT) if mode == "unbatched" else (STEPS, BATCH, INPUT)
    if batch_first:
        shape = (BATCH, STEPS, INPUT)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    h0 = None
    if mode in ("h0", "unbatched", "packed"):  # packed: h_0 in the original batch order
        h_shape = (slots, HIDDEN) if mode == "unbatched" else (slots, BATCH, HIDDEN)
        h0 = torch.randn(h_shape, dtype=dtype, requires_grad=True)

    if mode == "lengths":
        packed = pack_padded_sequence(x, LENGTHS, enforce_sorted=False)
        ref_out, ref_h = ref(packed)
        ref_out, _ = pad_packed_sequence(ref_out, total_length=STEPS)
        out, h = ours(x, lengths=torch.tensor(LENGTHS))
    elif mode == "packed":
        # one pack per model: each builds its own graph back to x
        ref_packed, ref_h = ref(pack_padded_sequence(x, LENGTHS, enforce_sorted=False), h0)
        our_packed, h = ours(pack_padded_sequence(x, LENGTHS, enforce_sorted=False), h0)
        assert type(our_packed) is type(ref_packed)
        assert torch.equal(our_packed.batch_sizes, ref_packed.batch_sizes)
        assert torch.equal(our_packed.sorted_indices, ref_packed.sorted_indices)
        assert torch.equal(our_packed.unsorted_indices, ref_packed.unsorted_indices)
        ref_out, out = ref_packed.data, our_packed.data
    else:
        ref_out, ref_h = ref(x, h0)
        out, h = ours(x, h0)

    tol = tolerances(dtype)
    assert out.shape == ref_out.shape and h.shape == ref_h.shape
    torch.testing.assert_close(out, ref_out, **tol)
    torch.testing.assert_close(h, ref_h, **tol)

    # A loss that weights every output and final-state entry differently.
    w_out = torch.randn_like(ref_out)
    w_h = torch.randn_like(ref_h)
    inputs = [x] + ([h0] if h0 is not None else [])
    ref_grads = torch.autograd.grad(
        (ref_out * w_out).sum() + (ref_h * w_h).sum(), inputs + list(ref.parameters())
    )
    our_grads = torch.autograd.grad(
        (out * w_out).sum() + (h * w_h).sum(), inputs + list(ours.parameters())
    )
    names = ["input"] + (["h0"] if h0 is not None else []) + [n for n, _ in ours.named_parameters()]
    for name, got, expected in zip(names, our_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, expected, **tol, msg=lambda m, n=name: f"grad of {n}: {m}")
