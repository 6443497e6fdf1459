"""Any cell gets bidirectional, stacked, padded and packed sequences from the layers."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqmodels import Bidirectional, ElmanCell, LSTMCell, Recurrent, RecurrentCell, Stacked
from seqmodels.core.padding import Lengths
from seqmodels.layers import recurrent


class GatedCell(RecurrentCell):
    """A small GRU-like cell defined only here: the layers must not know anything about it."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.gate = nn.Linear(input_size + hidden_size, hidden_size)
        self.candidate = nn.Linear(input_size + hidden_size, hidden_size)

    def forward(self, x_t, h):
        xh = torch.cat([x_t, h], dim=-1)
        z = torch.sigmoid(self.gate(xh))
        h = (1 - z) * h + z * torch.tanh(self.candidate(xh))
        return h, h


class PairStateCell(RecurrentCell):
    """A cell whose state is a tuple (like an LSTM's (h, c))."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.linear = nn.Linear(input_size + hidden_size, 2 * hidden_size)

    def initial_state(self, batch_size, like):
        zeros = like.new_zeros(batch_size, self.hidden_size)
        return zeros, zeros.clone()

    def forward(self, x_t, state):
        h, c = state
        a, b = self.linear(torch.cat([x_t, h], -1)).chunk(2, -1)
        c = c + torch.tanh(a)
        h = torch.sigmoid(b) * torch.tanh(c)
        return h, (h, c)


def reference_layer(cell, x_n):
    """Plain loop over ONE unpadded sequence x_n (T_n, F) -> outputs (T_n, H), final state."""
    h = cell.initial_state(1, like=x_n)
    outputs = []
    for x_t in x_n:
        out, h = cell(x_t.unsqueeze(0), h)
        outputs.append(out[0])
    return torch.stack(outputs), h


LENGTHS = [5, 2, 7, 3]


def padded_batch(features, lengths=LENGTHS):
    seqs = [torch.randn(n, features) for n in lengths]
    x = nn.utils.rnn.pad_sequence(seqs)  # (T, N, F), zero padded
    return seqs, x


def test_recurrent_padded_matches_per_sequence_loop():
    cell = GatedCell(3, 6)
    seqs, x = padded_batch(3)
    out, h_n = Recurrent(cell)(x, lengths=LENGTHS)
    for n, seq in enumerate(seqs):
        ref_out, ref_h = reference_layer(cell, seq)
        torch.testing.assert_close(out[: len(seq), n], ref_out)
        torch.testing.assert_close(h_n[0, n], ref_h[0])
        assert torch.all(out[len(seq) :, n] == 0), "padded outputs must be zero"


def test_padding_never_changes_state_even_with_garbage_in_padding():
    layer = Recurrent(GatedCell(3, 6))
    _, x = padded_batch(3)
    mask = torch.arange(x.shape[0])[:, None] >= torch.tensor(LENGTHS)[None]
    noisy = x.masked_fill(mask[..., None], 1e3)  # large values where the padding is
    out_a, h_a = layer(x, lengths=LENGTHS)
    out_b, h_b = layer(noisy, lengths=LENGTHS)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(h_a, h_b)


def test_bidirectional_backward_starts_at_each_sequence_last_real_step():
    fwd, bwd = GatedCell(3, 4), GatedCell(3, 4)
    layer = Bidirectional(fwd, bwd)
    seqs, x = padded_batch(3)
    out, h_n = layer(x, lengths=LENGTHS)
    assert out.shape == (x.shape[0], len(LENGTHS), 8) and h_n.shape == (2, len(LENGTHS), 4)
    for n, seq in enumerate(seqs):
        ref_f, hf = reference_layer(fwd, seq)
        ref_b, hb = reference_layer(bwd, seq.flip(0))
        torch.testing.assert_close(out[: len(seq), n, :4], ref_f)
        torch.testing.assert_close(out[: len(seq), n, 4:], ref_b.flip(0))
        torch.testing.assert_close(h_n[0, n], hf[0])
        torch.testing.assert_close(h_n[1, n], hb[0])


def test_stacked_bidirectional_user_cell_with_packed_sequences():
    torch.manual_seed(1)
    net = Stacked.from_cell(
        lambda i: GatedCell(i, 5), input_size=3, num_layers=2, bidirectional=True
    )
    seqs, x = padded_batch(3)
    packed = pack_padded_sequence(x, LENGTHS, enforce_sorted=False)
    out_packed, h_n = net(packed)
    assert isinstance(out_packed, nn.utils.rnn.PackedSequence)
    assert torch.equal(out_packed.batch_sizes, packed.batch_sizes)
    out, lens = pad_packed_sequence(out_packed)
    assert lens.tolist() == LENGTHS
    assert h_n.shape == (4, len(LENGTHS), 5)
    # each sequence alone, unpadded, through the same stack gives the same result
    for n, seq in enumerate(seqs):
        alone_out, alone_h = net(seq.unsqueeze(1))
        torch.testing.assert_close(out[: len(seq), n], alone_out[:, 0])
        torch.testing.assert_close(h_n[:, n], alone_h[:, 0])
    # gradients flow to every parameter and to the input
    x.requires_grad_(True)
    out_packed, h_n = net(pack_padded_sequence(x, LENGTHS, enforce_sorted=False))
    (out_packed.data.sum() + h_n.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    for n, length in enumerate(LENGTHS):
        assert torch.all(x.grad[length:, n] == 0), "no gradient may reach padding"


def test_tuple_state_cell_through_bidirectional_and_stacked():
    net = Stacked([Bidirectional(PairStateCell(3, 4)), Bidirectional(PairStateCell(8, 4))])
    seqs, x = padded_batch(3)
    out, (h_n, c_n) = net(x, lengths=LENGTHS)
    assert out.shape == (x.shape[0], len(LENGTHS), 8)
    assert h_n.shape == c_n.shape == (4, len(LENGTHS), 4)
    for n, seq in enumerate(seqs):
        alone_out, (alone_h, alone_c) = net(seq.unsqueeze(1))
        torch.testing.assert_close(out[: len(seq), n], alone_out[:, 0])
        torch.testing.assert_close(c_n[:, n], alone_c[:, 0])
    # a given initial state is used, and split per layer and direction in nn.RNN's order
    h0 = torch.randn(4, len(LENGTHS), 4), torch.randn(4, len(LENGTHS), 4)
    out_h0, _ = net(x, h0, lengths=LENGTHS)
    assert not torch.allclose(out_h0, out)


def test_stacked_dropout_between_layers_not_after_last():
    net = Stacked.from_cell(lambda i: ElmanCell(i, 32), input_size=4, num_layers=2, dropout=0.5)
    single = Stacked.from_cell(lambda i: ElmanCell(i, 32), input_size=4, num_layers=1, dropout=0.5)
    x = torch.randn(6, 3, 4)
    net.train()
    a, _ = net(x)
    b, _ = net(x)
    assert not torch.allclose(a, b), "dropout between layers is active in training"
    net.eval()
    torch.testing.assert_close(net(x)[0], net(x)[0])
    single.train()
    torch.testing.assert_close(single(x)[0], single(x)[0])  # nothing after the last layer


def test_batch_first_and_unbatched_inputs():
    layer = Recurrent(GatedCell(3, 4), batch_first=True)
    x = torch.randn(2, 5, 3)  # (N, T, F)
    out, h = layer(x)
    assert out.shape == (2, 5, 4) and h.shape == (1, 2, 4)
    single, h1 = layer(x[0])  # unbatched (T, F)
    assert single.shape == (5, 4) and h1.shape == (1, 4)
    torch.testing.assert_close(single, out[0])


def test_bidirectional_copy_is_reinitialised():
    layer = Bidirectional(ElmanCell(3, 4))
    assert not torch.equal(layer.forward_layer.cell.weight_hh, layer.backward_layer.cell.weight_hh)


def test_stacked_rejects_mismatched_sizes():
    with pytest.raises(
        ValueError, match="layer 0 outputs 4 features but layer 1 expects input_size 5"
    ):
        Stacked([ElmanCell(3, 4), ElmanCell(5, 4)])


def test_initial_state_follows_input_dtype():
    cell = ElmanCell(3, 4).double()
    state = cell.initial_state(2, like=torch.zeros(1, dtype=torch.float64))
    assert state.dtype == torch.float64 and state.shape == (2, 4)
    out, h = Recurrent(cell)(torch.randn(5, 2, 3, dtype=torch.float64))
    assert out.dtype == h.dtype == torch.float64


def test_project_input_fast_path_is_used_and_equals_plain_steps():
    cell = ElmanCell(3, 4)
    calls = []
    original = cell.project_input
    cell.project_input = lambda x: calls.append(x.shape) or original(x)
    x = torch.randn(6, 2, 3)
    out, _ = Recurrent(cell, backend="autograd")(x)
    assert calls == [torch.Size([6, 2, 3])], "the layer projects all steps in one call"
    ref, h = [], cell.initial_state(2, like=x)
    for x_t in x:
        o, h = cell(x_t, h)
        ref.append(o)
    torch.testing.assert_close(out, torch.stack(ref))


# scan walks padded batches forwards only (the layer flips them for a reverse direction).
@pytest.mark.parametrize(
    ("reverse", "lengths"), [(False, None), (True, None), (False, [7, 4])],
    ids=["forward", "reverse", "padded"],
)  # fmt: skip
def test_long_sequences_project_in_chunks_with_the_same_results(monkeypatch, reverse, lengths):
    """A long sequence's projection is one GEMM per chunk of PROJECTION_CHUNK_BYTES (here 3
    steps of 7: chunks of 3, 3, 1), walked in processing order; values and every gradient
    equal those of the per-step loop."""
    cell = LSTMCell(3, 4).double()
    calls = []
    original = cell.project_input
    cell.project_input = lambda x: calls.append(x.shape[0]) or original(x)
    step_bytes = 2 * 4 * cell.output_size * 8  # batch 2, LSTM width, float64
    monkeypatch.setattr(recurrent, "PROJECTION_CHUNK_BYTES", 3 * step_bytes)
    x = torch.randn(7, 2, 3, dtype=torch.float64, requires_grad=True)
    lens = None if lengths is None else Lengths.of(torch.tensor(lengths), 7)
    out, (h, c) = recurrent.scan(cell, x, cell.initial_state(2, like=x), lens, reverse=reverse)
    assert calls == ([1, 3, 3] if reverse else [3, 3, 1])
    params = [x, *cell.parameters()]
    grads = torch.autograd.grad((out * out).sum() + h.sum() + c.sum(), params)

    state, ref = cell.initial_state(2, like=x), [None] * 7
    for t in range(6, -1, -1) if reverse else range(7):
        o, new = cell(x[t], state)
        if lengths is not None:  # padding never changes a state; its outputs are zeros
            keep = torch.tensor([t < n for n in lengths]).unsqueeze(-1)
            new = tuple(torch.where(keep, a, b) for a, b in zip(new, state, strict=True))
            o = torch.where(keep, o, 0.0)
        ref[t], state = o, new
    ref_out = torch.stack(ref)
    torch.testing.assert_close(out, ref_out)
    loss = (ref_out * ref_out).sum() + state[0].sum() + state[1].sum()
    for a, b in zip(grads, torch.autograd.grad(loss, params), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "padded"])
def test_native_and_flipped_reverse_directions_agree(lengths):
    """Recurrent walks time backwards natively; any other layer is run on flipped copies."""
    fwd, bwd = GatedCell(3, 4), GatedCell(3, 4)
    native = Bidirectional(fwd, bwd)  # Recurrent backward layer: native reverse
    flipped = Bidirectional(Stacked([fwd]), Stacked([bwd]))  # default: flip, run, flip back
    _, x = padded_batch(3)
    out_a, h_a = native(x, lengths=lengths)
    out_b, h_b = flipped(x, lengths=lengths)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(h_a, h_b)
    steps = x.shape[0] if lengths is None else lengths[0]
    ref_b, hb = reference_layer(bwd, x[:steps, 0].flip(0))
    torch.testing.assert_close(out_a[:steps, 0, 4:], ref_b.flip(0))
    torch.testing.assert_close(h_a[1, 0], hb[0])
