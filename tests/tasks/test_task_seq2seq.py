import pytest
import torch
from task_helpers import LeakyCell, assert_same_metrics, loader, pad_right, trainer, validate

from seqmodels import Bidirectional, ElmanCell, ElmanRNN
from seqmodels.tasks import Seq2Seq, TeacherForcingSchedule
from seqmodels.tasks.seq2seq import Attention

PAD, BOS, EOS, VOCAB = 0, 2, 3, 10  # symbols 4..9


def make_batches(n_batches: int, n: int = 32, max_len: int = 5, seed: int = 0) -> list[dict]:
    """Reverse the source: target = BOS + reversed(source) + EOS, padded with PAD."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        lengths = torch.randint(2, max_len + 1, (n,), generator=g)
        source = torch.randint(4, VOCAB, (n, max_len), generator=g)
        source[torch.arange(max_len) >= lengths.unsqueeze(1)] = PAD
        target = torch.full((n, max_len + 2), PAD)
        for i, length in enumerate(lengths.tolist()):
            target[i, : length + 2] = torch.tensor([BOS, *source[i, :length].flip(0).tolist(), EOS])
        batches.append(
            {
                "source": source,
                "source_lengths": lengths,
                "target": target,
                "target_lengths": lengths + 2,
            }
        )
    return batches


def make_task(attention="general", encoder=None, hidden=32, **kwargs) -> Seq2Seq:
    encoder = encoder or ElmanRNN(8, hidden, batch_first=True, bidirectional=True)
    memory = 2 * hidden if attention else 0
    kwargs.setdefault("optimizer", {"name": "adam", "lr": 0.01})
    return Seq2Seq(
        encoder,
        # dot attention scores decoder states against encoder outputs: same width needed.
        decoder_cell=ElmanCell(8 + memory, 2 * hidden if attention == "dot" else hidden),
        target_vocab_size=VOCAB,
        source_vocab_size=VOCAB,
        source_embedding_dim=8,
        target_embedding_dim=8,
        attention=attention,
        **kwargs,
    )


def test_learns_to_reverse_with_attention():
    task = make_task("general", hidden=24, optimizer={"name": "adam", "lr": 0.02})
    trainer(max_epochs=15).fit(task, loader(make_batches(12, max_len=4)))
    metrics = validate(task, make_batches(2, max_len=4, seed=1))
    assert metrics["val/exact_match"] > 0.5  # chance is ~0
    assert metrics["val/token_acc"] > 0.9 and metrics["val/cer"] < 0.2


@pytest.mark.parametrize("attention", [None, "dot", "general", "additive"])
def test_padding_changes_no_loss_or_metric(attention):
    task = make_task(attention, beam_width=2)
    batches = make_batches(2, n=8)
    padded = [
        {**b, "source": pad_right(b["source"], 3, PAD), "target": pad_right(b["target"], 2, PAD)}
        for b in batches
    ]
    assert_same_metrics(validate(task, batches), validate(task, padded))


def test_beam_width_one_equals_greedy_and_beams_stop_at_eos():
    task = make_task("dot")
    trainer(max_epochs=3).fit(task, loader(make_batches(4)))
    task.cpu().eval()
    batch = make_batches(1, n=16, seed=3)[0]
    greedy = task.decode(batch["source"], batch["source_lengths"], beam_width=1)
    from seqmodels.tasks.seq2seq import beam_search

    state, memory = task.encode(batch["source"], batch["source_lengths"])
    beam1 = beam_search(
        task.decoder.log_prob_step,
        state,
        memory,
        16,
        BOS,
        EOS,
        PAD,
        15,
        greedy.device,
        beam_width=1,
    )
    assert torch.equal(beam1, greedy)
    beams = task.decode(batch["source"], batch["source_lengths"], beam_width=4, length_penalty=1.0)
    for row in beams.tolist():  # after EOS only padding
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1 :])


def test_runs_with_user_cell_encoder_and_scheduled_teacher_forcing():
    encoder = Bidirectional(LeakyCell(8, 16))
    schedule = {"kind": "linear", "start": 1.0, "end": 0.5, "steps": 10}
    task = make_task("general", encoder=encoder, hidden=16, teacher_forcing=schedule)
    val = make_batches(1, n=16, seed=2)
    before = validate(task, val)["val/loss"]
    trainer(max_epochs=3).fit(task, loader(make_batches(6)))
    assert validate(task, val)["val/loss"] < before
    assert task.teacher_forcing(18) == 0.5


@pytest.mark.parametrize(
    "encoder",
    [lambda: torch.nn.RNN(8, 32, batch_first=True), lambda: ElmanRNN(8, 32, backend="bptt")],
    ids=["torch-rnn", "elman-bptt"],
)
def test_runs_without_attention_on_other_encoders(encoder, tmp_path):
    task = Seq2Seq(
        encoder(),
        decoder_cell=lambda size: ElmanCell(size, 32),
        target_vocab_size=VOCAB,
        source_vocab_size=VOCAB,
        source_embedding_dim=8,
        target_embedding_dim=8,
        optimizer={"name": "adam", "lr": 0.01},
    )
    fit = trainer(max_epochs=2)
    fit.fit(task, loader(make_batches(4)))
    assert task.decode(make_batches(1)[0]["source"], torch.full((32,), 5)).shape[0] == 32
    if isinstance(task.body.encoder, ElmanRNN):  # a factory-built decoder cell round-trips too
        path = tmp_path / "factory.ckpt"
        fit.save_checkpoint(path)
        assert isinstance(Seq2Seq.load_from_checkpoint(path).decoder.cell, ElmanCell)


def test_checkpoint_reload_gives_identical_decoding(tmp_path):
    task = make_task("additive", beam_width=3)
    fit = trainer(max_epochs=1)
    fit.fit(task, loader(make_batches(2)))
    fit.save_checkpoint(tmp_path / "s2s.ckpt")
    restored = Seq2Seq.load_from_checkpoint(tmp_path / "s2s.ckpt", map_location="cpu").eval()
    task.cpu().eval()
    b = make_batches(1, seed=4)[0]
    assert torch.equal(
        restored.decode(b["source"], b["source_lengths"]),
        task.decode(b["source"], b["source_lengths"]),
    )
    torch.testing.assert_close(
        restored(b["source"], b["source_lengths"], b["target"]),
        task(b["source"], b["source_lengths"], b["target"]),
        rtol=0,
        atol=0,
    )


def test_attention_masks_padding_and_config_errors():
    att = Attention("general", 4, 6)
    outputs = torch.randn(2, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]).bool()
    context, weights = att(torch.randn(2, 4), att.prepare(outputs, mask))
    assert torch.all(weights[~mask] == 0) and torch.allclose(weights.sum(-1), torch.ones(2))
    torch.testing.assert_close(context[1], outputs[1, 0])
    with pytest.raises(ValueError, match=r"dot attention needs the decoder's hidden size \(16\)"):
        Attention("dot", 16, 32)
    with pytest.raises(ValueError, match="decoder cell takes input_size=9.*= 72"):
        Seq2Seq(
            ElmanRNN(8, 32, batch_first=True, bidirectional=True),
            ElmanCell(9, 32),
            VOCAB,
            source_vocab_size=VOCAB,
            source_embedding_dim=8,
            target_embedding_dim=8,
            attention="general",
        )
    s = TeacherForcingSchedule("inverse_sigmoid", k=10.0)
    assert s(0) > s(50) > s(100)
