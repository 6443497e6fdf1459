import pytest
import torch
from task_helpers import (
    LeakyCell,
    assert_same_metrics,
    loader,
    pad_right,
    trainer,
    validate,
)

from seqmodels import ElmanRNN, Stacked
from seqmodels.tasks import SequenceClassifier

VOCAB, CLASSES = 12, 3


def make_batches(n_batches: int, n: int = 16, t: int = 8, seed: int = 0) -> list[dict]:
    """Label = last real token mod 3: solvable only if 'last' pooling respects lengths."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        inputs = torch.randint(1, VOCAB, (n, t), generator=g)
        lengths = torch.randint(2, t + 1, (n,), generator=g)
        inputs[torch.arange(t) >= lengths.unsqueeze(1)] = 0
        targets = inputs[torch.arange(n), lengths - 1] % CLASSES
        batches.append({"inputs": inputs, "lengths": lengths, "targets": targets})
    return batches


def make_task(encoder=None, **kwargs) -> SequenceClassifier:
    encoder = encoder or ElmanRNN(8, 24, batch_first=True)
    kwargs.setdefault("optimizer", {"name": "adam", "lr": 0.01})
    return SequenceClassifier(
        encoder, num_classes=CLASSES, vocab_size=VOCAB, embedding_dim=8, **kwargs
    )


def test_classifier_learns_last_token_rule():
    task = make_task()
    trainer(max_epochs=6).fit(task, loader(make_batches(40)))
    metrics = validate(task, make_batches(8, seed=1))
    assert metrics["val/acc"] > 0.9  # chance is 1/3
    assert 0 < metrics["val/f1_macro"] <= 1


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_padding_changes_no_loss_or_metric(pooling):
    task = make_task(encoder=ElmanRNN(8, 16, batch_first=True, bidirectional=True), pooling=pooling)
    batches = make_batches(2)
    padded = [{**b, "inputs": pad_right(b["inputs"], 5, 0)} for b in batches]
    assert_same_metrics(validate(task, batches), validate(task, padded))


def _encoders():
    return {
        "elman-autograd": ElmanRNN(8, 16, batch_first=True, backend="autograd"),
        "elman-bptt": ElmanRNN(8, 16, num_layers=2, batch_first=True, backend="bptt"),
        "user-cell": Stacked.from_cell(lambda i: LeakyCell(i, 16), 8, 2, bidirectional=True),
        "torch-rnn": torch.nn.RNN(8, 16, batch_first=True, bidirectional=True),
    }


@pytest.mark.parametrize("name", list(_encoders()))
def test_runs_with_every_encoder(name):
    task = make_task(encoder=_encoders()[name])
    before = validate(task, make_batches(2, seed=3))["val/loss"]
    trainer(max_epochs=3).fit(task, loader(make_batches(10)))
    after = validate(task, make_batches(2, seed=3))["val/loss"]
    assert after < before


def test_binary_head_logs_auroc_and_learns():
    batches = make_batches(30)
    for b in batches:
        b["targets"] = (b["targets"] == 0).long()
    task = SequenceClassifier(
        ElmanRNN(8, 16, batch_first=True),
        head="binary",
        vocab_size=VOCAB,
        embedding_dim=8,
        optimizer={"name": "adam", "lr": 0.01},
    )
    trainer(max_epochs=5).fit(task, loader(batches))
    metrics = validate(task, batches[:4])
    assert metrics["val/auroc"] > 0.9 and metrics["val/acc"] > 0.8
    padded = [{**b, "inputs": pad_right(b["inputs"], 3, 0)} for b in batches[:4]]
    assert_same_metrics(metrics, validate(task, padded))


def make_regression_batches(n_batches: int, seed: int = 0) -> list[dict]:
    """Float features; target = mean of the real steps (two outputs: mean and -mean)."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        x = torch.randn(16, 6, 2, generator=g)
        lengths = torch.randint(1, 7, (16,), generator=g)
        mask = (torch.arange(6) < lengths.unsqueeze(1)).unsqueeze(-1)
        x = x * mask
        mean = x.sum(1)[:, 0] / lengths
        batches.append({"inputs": x, "lengths": lengths, "targets": torch.stack([mean, -mean], 1)})
    return batches


def test_regression_head_learns_masked_mean():
    task = SequenceClassifier(
        ElmanRNN(2, 16, batch_first=True),
        head="regression",
        num_outputs=2,
        pooling="mean",
        optimizer={"name": "adam", "lr": 0.01},
    )
    trainer(max_epochs=8).fit(task, loader(make_regression_batches(30)))
    val = make_regression_batches(4, seed=5)
    metrics = validate(task, val)
    variance = torch.cat([b["targets"] for b in val]).var().item()
    assert metrics["val/mse"] < 0.2 * variance and metrics["val/r2"] > 0.7
    padded = [{**b, "inputs": pad_right(b["inputs"], 4, 0.0)} for b in val]
    assert_same_metrics(metrics, validate(task, padded))


def test_checkpoint_reload_gives_identical_predictions(tmp_path):
    task = make_task(
        encoder=Stacked.from_cell(lambda i: LeakyCell(i, 16), 8, 1, bidirectional=True)
    )
    fit = trainer(max_epochs=1, default_root_dir=tmp_path)
    fit.fit(task, loader(make_batches(3)))
    path = tmp_path / "task.ckpt"
    fit.save_checkpoint(path)
    restored = SequenceClassifier.load_from_checkpoint(path, map_location="cpu")
    batch = make_batches(1, seed=9)[0]
    task.cpu().eval()
    restored.eval()
    torch.testing.assert_close(
        restored(batch["inputs"], batch["lengths"]),
        task(batch["inputs"], batch["lengths"]),
        rtol=0,
        atol=0,
    )


def test_bad_labels_and_sizes_raise_clear_errors():
    task = make_task()
    batch = make_batches(1)[0]
    with pytest.raises(ValueError, match="target class 7 is out of range.*3 classes"):
        task.shared_step({**batch, "targets": batch["targets"].fill_(7)}, "val")
    with pytest.raises(ValueError, match=r"shape \(16,\)"):
        task.shared_step({**batch, "targets": batch["targets"][:4]}, "val")
    with pytest.raises(ValueError, match="input_size=5.*produces 8 features"):
        make_task(encoder=ElmanRNN(5, 16, batch_first=True))
    with pytest.raises(ValueError, match="token id 12.*size 12"):
        task(batch["inputs"].fill_(VOCAB), batch["lengths"])


def test_checkpoint_records_the_backend_and_loads_into_any(tmp_path):
    from seqmodels import LSTM

    task = make_task(encoder=LSTM(8, 16, batch_first=True, backend="torch"))
    fit = trainer(max_epochs=1, default_root_dir=tmp_path)
    fit.fit(task, loader(make_batches(2)))
    path = tmp_path / "task.ckpt"
    fit.save_checkpoint(path)
    restored = SequenceClassifier.load_from_checkpoint(path, map_location="cpu").eval()
    assert restored.body.encoder.backend == "torch", "the configured backend is recorded"
    batch = make_batches(1, seed=9)[0]
    expected = task.cpu().eval()(batch["inputs"], batch["lengths"])
    for backend in ("auto", "bptt", "autograd", "torch"):
        restored.body.encoder.backend = backend
        got = restored(batch["inputs"], batch["lengths"])
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
