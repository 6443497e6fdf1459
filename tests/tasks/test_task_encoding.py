"""The task <-> encoder boundary: lengths for seqmodels' layers, packing only for torch's."""

import pytest
import torch
from task_helpers import LeakyCell
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqmodels import ElmanRNN, Stacked
from seqmodels.tasks.encoding import (
    SequenceEncoder,
    encoder_direction_sizes,
    encoder_output_size,
    encoder_top_slots,
    run_encoder,
    top_layer_state,
)

LENGTHS = torch.tensor([5, 2, 4])


def _record_calls(encoder: nn.Module) -> list[tuple[tuple, dict]]:
    calls: list[tuple[tuple, dict]] = []
    encoder.register_forward_pre_hook(
        lambda _m, args, kwargs: calls.append((args, kwargs)), with_kwargs=True
    )
    return calls


@pytest.mark.parametrize(
    "make",
    [
        lambda: ElmanRNN(3, 6, batch_first=True, bidirectional=True),
        lambda: ElmanRNN(3, 6, num_layers=2, backend="bptt"),  # time-major
        lambda: Stacked.from_cell(lambda i: LeakyCell(i, 6), 3, 2, bidirectional=True),
    ],
)
def test_seqmodels_layers_get_lengths_not_a_packed_sequence(make):
    encoder = make()
    calls = _record_calls(encoder)
    x = torch.randn(3, 5, 3)  # (N, T, F)
    out, final = run_encoder(encoder, x, LENGTHS)
    ((args, kwargs),) = calls
    assert isinstance(args[0], torch.Tensor), type(args[0]).__name__
    torch.testing.assert_close(kwargs["lengths"], LENGTHS)
    assert out.shape == (3, 5, encoder_output_size(encoder))
    assert torch.all(out[1, 2:] == 0) and torch.all(out[2, 4:] == 0)  # padded steps

    # Same result as packing the batch: state at each sequence's own last step.
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    if not encoder.batch_first:
        packed = pack_padded_sequence(x.transpose(0, 1), LENGTHS, enforce_sorted=False)
    ref_out, ref_final = encoder(packed)
    ref_out, _ = pad_packed_sequence(ref_out, batch_first=True, total_length=5)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(final, ref_final)


def test_torch_modules_are_packed():
    encoder = nn.GRU(3, 6, batch_first=False)
    calls = _record_calls(encoder)
    out, final = run_encoder(encoder, torch.randn(3, 5, 3), LENGTHS)
    ((args, kwargs),) = calls
    assert isinstance(args[0], PackedSequence) and "lengths" not in kwargs
    assert out.shape == (3, 5, 6) and final.shape == (1, 3, 6)


@pytest.mark.parametrize(
    ("encoder", "sizes", "slots"),
    [
        (nn.RNN(3, 6), (6,), (0,)),
        (nn.GRU(3, 6, num_layers=3), (6,), (2,)),
        (nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4), (4, 4), (2, 3)),
    ],
)
def test_torch_layout_follows_num_layers_bidirectional_and_proj_size(encoder, sizes, slots):
    assert encoder_direction_sizes(encoder) == sizes
    assert encoder_top_slots(encoder) == slots
    assert encoder_output_size(encoder) == sum(sizes)


def test_seqmodels_layers_expose_their_top_layer():
    stacked = Stacked.from_cell(lambda i: LeakyCell(i, 6), 3, 2, bidirectional=True)
    assert encoder_direction_sizes(stacked) == (6, 6)
    assert encoder_top_slots(stacked) == (2, 3)
    rnn = ElmanRNN(3, 5, num_layers=3)
    assert encoder_direction_sizes(rnn) == (5,) and encoder_top_slots(rnn) == (2,)


def test_top_layer_state_of_a_stacked_bidirectional_lstm():
    lstm = nn.LSTM(3, 6, num_layers=2, bidirectional=True, batch_first=True)
    body = SequenceEncoder(lstm, input_size=3)
    out, (h_n, c_n) = body(torch.randn(3, 5, 3), LENGTHS)
    summary = top_layer_state((h_n, c_n), body.top_slots)  # (N, 2 * H)
    torch.testing.assert_close(summary, torch.cat([h_n[2], h_n[3]], dim=-1))
    # The forward half ends at each sequence's last real step, the backward half at step 0.
    torch.testing.assert_close(summary[:, :6], out[torch.arange(3), LENGTHS - 1, :6])
    torch.testing.assert_close(summary[:, 6:], out[:, 0, 6:])


def test_an_encoder_without_a_layout_is_refused_by_name():
    class Opaque(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(ValueError, match="Opaque.*direction_sizes.*hidden_size"):
        encoder_direction_sizes(Opaque())
