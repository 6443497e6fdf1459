import pytest
import torch
from task_helpers import LeakyCell, assert_same_metrics, loader, pad_right, trainer, validate

from seqmodels import ElmanRNN, Stacked
from seqmodels.tasks import SequenceTagger

VOCAB, TAGS = 12, 4


def make_batches(n_batches: int, n: int = 16, t: int = 8, seed: int = 0) -> list[dict]:
    """Copy-the-input-tag: tag_t = token_t mod 4; padding: token 0, tag -100."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        inputs = torch.randint(1, VOCAB, (n, t), generator=g)
        lengths = torch.randint(1, t + 1, (n,), generator=g)
        pad = torch.arange(t) >= lengths.unsqueeze(1)
        inputs[pad] = 0
        targets = (inputs % TAGS).masked_fill(pad, -100)
        batches.append({"inputs": inputs, "lengths": lengths, "targets": targets})
    return batches


def make_task(encoder=None, **kwargs) -> SequenceTagger:
    encoder = encoder or ElmanRNN(8, 16, batch_first=True, bidirectional=True)
    kwargs.setdefault("optimizer", {"name": "adam", "lr": 0.02})
    return SequenceTagger(encoder, num_classes=TAGS, vocab_size=VOCAB, embedding_dim=8, **kwargs)


def test_tagger_learns_copy_the_tag():
    task = make_task()
    trainer(max_epochs=4).fit(task, loader(make_batches(30)))
    metrics = validate(task, make_batches(4, seed=1))
    assert metrics["val/acc"] > 0.97 and metrics["val/f1_macro"] > 0.95


def test_padding_changes_no_loss_or_metric():
    task = make_task()
    batches = make_batches(2)
    padded = [
        {**b, "inputs": pad_right(b["inputs"], 4, 0), "targets": pad_right(b["targets"], 4, -100)}
        for b in batches
    ]
    assert_same_metrics(validate(task, batches), validate(task, padded))
    # Garbage in padded targets is ignored too: the mask comes from lengths.
    garbage = [{**b, "targets": pad_right(b["targets"], 4, 3)} for b in batches]
    garbage = [{**b, "inputs": pad_right(b["inputs"], 4, 0)} for b in garbage]
    assert_same_metrics(validate(task, batches), validate(task, garbage))


@pytest.mark.parametrize(
    "encoder",
    [
        lambda: ElmanRNN(8, 16, batch_first=True, backend="bptt"),
        lambda: Stacked.from_cell(lambda i: LeakyCell(i, 16), 8, 1, bidirectional=True),
        lambda: torch.nn.RNN(8, 16, batch_first=False),
    ],
    ids=["elman-bptt", "user-cell", "torch-rnn"],
)
def test_runs_with_other_encoders(encoder):
    task = make_task(encoder=encoder())
    val = make_batches(2, seed=2)
    before = validate(task, val)["val/loss"]
    trainer(max_epochs=2).fit(task, loader(make_batches(8)))
    assert validate(task, val)["val/loss"] < before


def make_forecast_batches(n_batches: int, seed: int = 0) -> list[dict]:
    """Per-step regression: y_t = x_{t-1} (one step of memory), padded steps 0."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        x = torch.randn(16, 7, 1, generator=g)
        lengths = torch.randint(2, 8, (16,), generator=g)
        keep = (torch.arange(7) < lengths.unsqueeze(1)).unsqueeze(-1)
        x = x * keep
        y = torch.cat([torch.zeros(16, 1, 1), x[:, :-1]], 1) * keep
        batches.append({"inputs": x, "lengths": lengths, "targets": y.squeeze(-1)})
    return batches


def test_per_step_regression_learns_and_ignores_padding():
    task = SequenceTagger(
        ElmanRNN(1, 16, batch_first=True), head="regression", optimizer={"name": "adam", "lr": 0.02}
    )
    trainer(max_epochs=6).fit(task, loader(make_forecast_batches(30)))
    val = make_forecast_batches(3, seed=4)
    metrics = validate(task, val)
    assert metrics["val/mse"] < 0.1  # the targets have variance ~1
    padded = [
        {**b, "inputs": pad_right(b["inputs"], 3, 0.0), "targets": pad_right(b["targets"], 3, 9.0)}
        for b in val
    ]
    assert_same_metrics(metrics, validate(task, padded))


def test_checkpoint_reload_and_predict(tmp_path):
    task = make_task()
    fit = trainer(max_epochs=1)
    fit.fit(task, loader(make_batches(2)))
    fit.save_checkpoint(tmp_path / "tagger.ckpt")
    restored = SequenceTagger.load_from_checkpoint(tmp_path / "tagger.ckpt", map_location="cpu")
    batch = make_batches(1, seed=7)[0]
    task.cpu().eval()
    restored.eval()
    preds = restored.predict(batch["inputs"], batch["lengths"])
    assert torch.equal(preds, task.predict(batch["inputs"], batch["lengths"]))
    assert torch.equal(preds == -100, batch["targets"] == -100)


def test_bad_targets_raise_clear_errors():
    task = make_task()
    batch = make_batches(1)[0]
    with pytest.raises(ValueError, match=r"targets must start with \(N, T\)"):
        task.shared_step({**batch, "targets": batch["targets"][:, :3]}, "val")
    bad = batch["targets"].clone()
    bad[0, 0] = 9
    with pytest.raises(ValueError, match="target class 9 is out of range.*4 classes"):
        task.shared_step({**batch, "targets": bad}, "val")
