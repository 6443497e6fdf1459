"""Gated cells in the tasks: the LM carries (h, c) across chunks, seq2seq decodes with them."""

import pytest
import torch
from task_helpers import loader, trainer
from test_task_lm import chunk, make_lm, periodic_streams
from test_task_seq2seq import BOS, EOS, VOCAB, make_batches

from seqmodels import GRU, LSTM, GRUCell, LSTMCell, Stacked
from seqmodels.tasks import Seq2Seq


@pytest.mark.parametrize(
    "encoder",
    [
        lambda: LSTM(8, 16, batch_first=True),
        lambda: LSTM(8, 16, num_layers=2, batch_first=True, backend="autograd"),
        lambda: Stacked.from_cell(lambda size: LSTMCell(size, 16), 8, 1, batch_first=True),
        lambda: torch.nn.LSTM(8, 16, batch_first=True),
    ],
    ids=["lstm-bptt", "lstm-2-layers-autograd", "generic-lstm-cell", "torch-lstm"],
)
def test_lm_carries_h_and_c_across_chunks(encoder):
    task = make_lm(encoder()).eval()
    streams = periodic_streams(3, 25, seed=2)
    _, full = task(streams[:, :24])  # the whole stream at once
    for b in chunk(streams, 8):  # three truncated-BPTT chunks of 8
        task.validation_step(b, 0)
    carried = task.carried_state("val")
    assert isinstance(carried, tuple) and len(carried) == 2  # (h, c)
    for got, want in zip(carried, full, strict=True):
        torch.testing.assert_close(got, want)
        assert not got.requires_grad
    # A reset row starts from zeros in both h and c; the others carry on.
    nxt = {**chunk(streams, 8)[1], "reset": torch.tensor([True, False, False])}
    h, c = task._initial_state("val", nxt)
    assert h[:, 0].abs().sum() == 0 and c[:, 0].abs().sum() == 0
    torch.testing.assert_close(c[:, 1:], carried[1][:, 1:])


def test_lm_trains_with_an_lstm_over_chunks():
    task = make_lm(LSTM(8, 16, batch_first=True))
    before = {k: v.clone() for k, v in task.state_dict().items()}
    batches = chunk(periodic_streams(4, 33, seed=0), 8)
    trainer(max_epochs=2).fit(task, loader(batches))
    assert any(not torch.equal(before[k], v) for k, v in task.state_dict().items())
    assert isinstance(task.carried_state("train"), tuple)


def make_gated_task(cell, encoder=None, attention="general", hidden=16) -> Seq2Seq:
    encoder = encoder or LSTM(8, hidden, batch_first=True, bidirectional=True)
    return Seq2Seq(
        encoder,
        decoder_cell=lambda size: cell(size, hidden),
        target_vocab_size=VOCAB,
        source_vocab_size=VOCAB,
        source_embedding_dim=8,
        target_embedding_dim=8,
        attention=attention,
        optimizer={"name": "adam", "lr": 0.02},
    )


@pytest.mark.parametrize("cell", [LSTMCell, GRUCell])
@pytest.mark.parametrize("attention", [None, "general"])
def test_seq2seq_decoder_takes_a_gated_cell(cell, attention):
    task = make_gated_task(cell, attention=attention)
    assert isinstance(task.decoder.cell, cell)
    batch = make_batches(1, n=6)[0]
    loss = task.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert task.decoder.cell.weight_hh.grad.abs().sum() > 0
    for beam in (1, 3):  # greedy and beam search reorder the (h, c) state
        out = task.decode(batch["source"], batch["source_lengths"], max_length=7, beam_width=beam)
        assert out.shape[0] == 6


def test_seq2seq_with_lstm_decoder_learns_to_reverse():
    task = make_gated_task(LSTMCell, encoder=GRU(8, 16, batch_first=True, bidirectional=True))
    trainer(max_epochs=12).fit(task, loader(make_batches(12, max_len=4)))
    batch = make_batches(1, max_len=4, seed=1)[0]
    out = task.decode(batch["source"], batch["source_lengths"], max_length=6)
    target = batch["target"][:, 1:]
    first = (out[:, 0] == target[:, 0]).float().mean()
    assert first > 0.5  # the first reversed symbol is the source's last: chance is 1/6
    assert BOS not in out[:, 0].tolist() and EOS < VOCAB
