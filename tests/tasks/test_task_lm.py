import math

import pytest
import torch
from task_helpers import LeakyCell, assert_same_metrics, loader, pad_right, trainer, validate

from seqmodels import ElmanRNN, Recurrent
from seqmodels.tasks.base import build
from seqmodels.tasks.lm import LanguageModel
from seqmodels.tasks.ngram import NGramBaseline, NGramLM, streams_from_batches

PATTERN = [0, 1, 2, 0, 1, 3]  # "abcabd": after "ab" comes c or d, so a trigram is unsure
VOCAB = {"tokens": ["a", "b", "c", "d"], "level": "char"}


def periodic_streams(rows: int, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    phase = torch.randint(0, len(PATTERN), (rows, 1), generator=g)
    index = (phase + torch.arange(length)) % len(PATTERN)
    return torch.tensor(PATTERN)[index]  # (rows, length)


def chunk(streams: torch.Tensor, k: int) -> list[dict]:
    """Contiguous chunks: row n of consecutive batches continues stream n."""
    batches = []
    for start in range(0, streams.shape[1] - 1, k):
        inputs = streams[:, start : start + k]
        targets = streams[:, start + 1 : start + k + 1]
        inputs = inputs[:, : targets.shape[1]]
        n, t = inputs.shape
        batches.append(
            {
                "inputs": inputs,
                "targets": targets,
                "lengths": torch.full((n,), t),
                "reset": torch.full((n,), start == 0),
            }
        )
    return batches


def make_lm(encoder=None, **kwargs) -> LanguageModel:
    encoder = encoder or ElmanRNN(8, 32, batch_first=True)
    kwargs.setdefault("optimizer", {"name": "adam", "lr": 0.01})
    kwargs.setdefault("embedding_dim", 8)
    return LanguageModel(encoder, vocab_size=4, vocab=VOCAB, **kwargs)


def test_lm_beats_uniform_and_trigram_on_periodic_text():
    train = chunk(periodic_streams(8, 321, seed=0), 16)
    val = chunk(periodic_streams(4, 161, seed=1), 16)
    task = make_lm()
    fit = trainer(max_epochs=12, callbacks=[NGramBaseline(order=3, k=0.1)])
    fit.fit(task, loader(train), loader(val))
    metrics = {k: float(v) for k, v in fit.callback_metrics.items()}
    assert metrics["val/loss"] < 0.1 * math.log(4)  # far below uniform
    assert metrics["val/perplexity"] < metrics["val/ngram_perplexity"]
    assert metrics["val/bpc"] < metrics["val/ngram_bpc"]
    assert metrics["val/perplexity"] == pytest.approx(math.exp(metrics["val/loss"]), rel=1e-4)
    assert task.generate("abcab", 6) == "dabcab"


def test_state_is_carried_detached_and_reset():
    task = make_lm().eval()
    streams = periodic_streams(3, 25, seed=2)
    batches = chunk(streams, 8)
    _, full_state = task(streams[:, :24])
    for b in batches:
        task.validation_step(b, 0)
    torch.testing.assert_close(task.carried_state("val"), full_state)
    assert not task.carried_state("val").requires_grad
    # A reset row starts from zeros, the others carry on.
    before = task.carried_state("val").clone()
    nxt = {**batches[1], "reset": torch.tensor([True, False, False])}
    expected, _ = task(nxt["inputs"], state=before * torch.tensor([0.0, 1, 1]).view(1, 3, 1))
    assert torch.equal(
        task._initial_state("val", nxt), before * torch.tensor([0.0, 1, 1]).view(1, 3, 1)
    )
    task.on_validation_epoch_start()
    assert task.carried_state("val") is None
    assert expected.shape == (3, 8, 4)


def test_padding_changes_no_loss_or_metric():
    task = make_lm()
    batches = chunk(periodic_streams(4, 41, seed=3), 10)
    padded = [
        {**b, "inputs": pad_right(b["inputs"], 5, 0), "targets": pad_right(b["targets"], 5, -100)}
        for b in batches
    ]
    assert_same_metrics(validate(task, batches), validate(task, padded))


@pytest.mark.parametrize(
    "encoder",
    [
        lambda: torch.nn.RNN(4, 16, batch_first=True),
        lambda: ElmanRNN(4, 16, num_layers=2, batch_first=True, backend="bptt"),
        lambda: Recurrent(LeakyCell(4, 16)),
    ],
    ids=["torch-rnn-onehot", "elman-bptt-onehot", "user-cell-onehot"],
)
def test_onehot_inputs_with_every_encoder(encoder):
    task = make_lm(encoder(), input_mode="onehot", embedding_dim=None)
    val = chunk(periodic_streams(4, 41, seed=5), 10)
    before = validate(task, val)["val/loss"]
    trainer(max_epochs=2).fit(task, loader(chunk(periodic_streams(8, 161, seed=4), 16)))
    assert validate(task, val)["val/loss"] < before


def test_generate_seeded_temperature_and_top_k():
    torch.manual_seed(1)
    task = LanguageModel(ElmanRNN(6, 16, batch_first=True), vocab_size=11, embedding_dim=6)
    prompt = [1, 2, 3]
    sample = task.generate(prompt, 30, strategy="sample", seed=123)
    assert sample == task.generate(prompt, 30, strategy="sample", seed=123)
    assert sample != task.generate(prompt, 30, strategy="sample", seed=124)
    greedy = task.generate(prompt, 30)
    assert task.generate(prompt, 30, strategy="sample", temperature=1e-6, seed=5) == greedy
    assert task.generate(prompt, 30, strategy="sample", temperature=0.0) == greedy
    for seed in range(3):
        out = task.generate(prompt, 30, strategy="sample", top_k=3, temperature=2.0, seed=seed)
        logits, _ = task.eval()(torch.tensor([prompt + out]))
        # The logits at position p predict token p + 1: the emitted token must be in their top 3.
        top3 = logits[0, len(prompt) - 1 : -1].topk(3, dim=-1).indices
        assert (top3 == torch.tensor(out).unsqueeze(1)).any(1).all()


def test_checkpoint_keeps_vocab_and_generates_identically(tmp_path):
    task = make_lm()
    fit = trainer(max_epochs=1)
    fit.fit(task, loader(chunk(periodic_streams(4, 81, seed=0), 16)))
    fit.save_checkpoint(tmp_path / "lm.ckpt")
    restored = LanguageModel.load_from_checkpoint(tmp_path / "lm.ckpt", map_location="cpu")
    task.cpu()
    assert restored.vocab == VOCAB
    assert restored.generate("abc", 12, strategy="sample", seed=3) == task.generate(
        "abc", 12, strategy="sample", seed=3
    )


def test_word_level_decode_and_generate_return_text():
    from seqmodels.data import Vocabulary

    vocab = Vocabulary.build(["the cat sat on the mat ."], level="word")
    task = LanguageModel(
        ElmanRNN(8, 16, batch_first=True), len(vocab), embedding_dim=8, vocab=vocab.state_dict()
    )
    ids = vocab.encode("the cat sat")
    assert task.decode(ids) == "the cat sat" == vocab.decode_text(ids)
    out = task.generate("the cat", 5, strategy="sample", seed=0)
    assert isinstance(out, str) and out.startswith(" ") and out.strip()
    # prompt + generated reads as one text; a prompt ending in a space takes no second one.
    assert out == " " + task.decode(task.generate(vocab.encode("the cat"), 5, "sample", seed=0))
    assert task.generate("the cat ", 5, strategy="sample", seed=0) == out[1:]
    # A {"tokens": [...], "level": "word"} dict decodes the same way; characters join as is.
    plain = LanguageModel(
        ElmanRNN(8, 16, batch_first=True),
        len(vocab),
        embedding_dim=8,
        vocab={"tokens": vocab.itos, "level": "word"},
    )
    assert plain.decode(ids) == "the cat sat"
    assert make_lm().decode([0, 1, 3]) == "abd"


def test_a_model_without_vocab_takes_the_checkpoints(tmp_path):
    task = make_lm()
    fit = trainer(max_epochs=1)
    fit.fit(task, loader(chunk(periodic_streams(4, 33, seed=0), 16)))
    fit.save_checkpoint(tmp_path / "lm.ckpt")
    bare = LanguageModel(ElmanRNN(8, 32, batch_first=True), vocab_size=4, embedding_dim=8)
    assert bare.vocab is None
    batches = loader(chunk(periodic_streams(4, 33, seed=1), 16))
    trainer().validate(bare, batches, ckpt_path=tmp_path / "lm.ckpt", weights_only=False)
    assert bare.vocab == VOCAB and bare.hparams["vocab"] == VOCAB
    assert bare.decode([0, 3]) == "ad"


def test_a_spec_that_cannot_be_built_says_why():
    nested = {"_target_": "torch.nn.Sequential", "_args_": [{"_target_": "my_research_pkg.Layer"}]}
    with pytest.raises(ImportError, match=r"cannot import 'my_research_pkg.Layer'.*Python path"):
        build(nested)
    with pytest.raises(TypeError, match="unexpected keyword argument 'zork'"):  # not wrapped
        build({"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 3, "zork": 1})


def test_vocab_mismatch_and_bad_ids_raise_clear_errors():
    task = make_lm()
    with pytest.raises(ValueError, match="model has 4 tokens, the data 5"):
        task.check_vocab(data_vocab_size=5)
    with pytest.raises(ValueError, match="at id 2: the model has 'c', the data 'x'"):
        task.check_vocab({"tokens": ["a", "b", "x", "d"]})
    with pytest.raises(ValueError, match="vocab has 3 tokens but vocab_size is 4"):
        LanguageModel(ElmanRNN(8, 8, batch_first=True), 4, embedding_dim=8, vocab={"tokens": "abc"})
    batch = chunk(periodic_streams(2, 9, seed=0), 8)[0]
    with pytest.raises(ValueError, match="token id 7, outside the model's vocabulary of size 4"):
        task.shared_step({**batch, "targets": batch["targets"].fill_(7)}, "val")
    # A model without a vocabulary adopts the data's (so its checkpoint carries it).
    bare = LanguageModel(ElmanRNN(8, 8, batch_first=True), 4, embedding_dim=8)
    bare.check_vocab(VOCAB)
    assert bare.hparams["vocab"] == VOCAB and bare.decode([0, 3]) == "ad"


def test_ngram_counts_and_stream_reassembly():
    lm = NGramLM(vocab_size=3, order=2, k=1.0).fit([torch.tensor([0, 1, 0, 1, 0])])
    # p(1|0) = (2+1)/(2+3) and p(0|1) = (2+1)/(2+3)
    assert lm.perplexity([torch.tensor([0, 1, 0])]) == pytest.approx(5 / 3)
    streams = periodic_streams(3, 30, seed=0)
    rebuilt = streams_from_batches(chunk(streams, 7))
    assert [s.tolist() for s in rebuilt] == streams.tolist()
    # A trigram is certain everywhere but after "ab": 2 of 6 positions cost ~ln 2.
    tri = NGramLM(4, order=3, k=1e-3).fit(rebuilt)
    assert tri.cross_entropy(rebuilt) == pytest.approx(math.log(2) / 3, rel=0.05)
