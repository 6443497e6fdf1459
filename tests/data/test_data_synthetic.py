import math

import torch
import torch.nn.functional as F

from seqmodels.data import (
    AddingDataModule,
    CopyMemoryDataModule,
    SequenceTransformDataModule,
    adding_baseline_mse,
    adding_problem,
    constant_predictor_mse,
    copy_memory,
    copy_memory_baseline,
    copy_memory_baseline_log_probs,
    make_generator,
    uniform_symbol_baseline,
)


def _first(loader):
    return next(iter(loader))


def test_adding_problem_structure():
    x, y = adding_problem(200, 30, make_generator(0))
    assert x.shape == (200, 30, 2) and y.shape == (200,) and x.dtype == torch.float32
    markers = x[..., 1]
    assert torch.all(markers.sum(1) == 2)
    assert torch.all(markers[:, :15].sum(1) == 1) and torch.all(markers[:, 15:].sum(1) == 1)
    assert torch.allclose((x[..., 0] * markers).sum(1), y)
    assert x[..., 0].min() >= 0 and x[..., 0].max() <= 1


def test_adding_constant_one_baseline_is_one_sixth():
    assert adding_baseline_mse() == 1 / 6
    _, y = adding_problem(50_000, 10, make_generator(1))
    assert abs(constant_predictor_mse(y, 1.0) - 0.167) < 0.01
    assert abs(constant_predictor_mse(y, 1.0) - 1 / 6) < 0.005


def test_adding_datamodule_shapes_and_determinism():
    def batch(seed):
        dm = AddingDataModule(length=40, n_train=64, n_val=16, n_test=16, batch_size=8, seed=seed)
        dm.setup()
        return dm, _first(dm.train_dataloader())

    dm, b = batch(0)
    assert b["inputs"].shape == (8, 40, 2) and b["inputs"].dtype == torch.float32
    assert b["targets"].shape == (8,) and b["targets"].dtype == torch.float32
    assert b["lengths"].tolist() == [40] * 8 and b["lengths"].device.type == "cpu"
    assert dm.input_size == 2 and dm.vocab is None and dm.num_classes is None
    assert len(dm.dataset("val")) == 16
    assert torch.equal(b["inputs"], batch(0)[1]["inputs"])
    assert not torch.equal(b["inputs"], batch(1)[1]["inputs"])
    val = _first(dm.val_dataloader())["inputs"]
    assert not torch.equal(val, b["inputs"])  # splits are generated independently


def test_copy_memory_layout():
    x, y = copy_memory(50, delay=20, generator=make_generator(0))
    assert x.shape == y.shape == (50, 40)
    assert torch.all((x[:, :10] >= 1) & (x[:, :10] <= 8))
    assert torch.all(x[:, 29] == 9)  # delimiter at step T + 10 - 1
    assert torch.all(x[:, 10:29] == 0) and torch.all(x[:, 30:] == 0)
    assert torch.all(y[:, :30] == 0) and torch.equal(y[:, 30:], x[:, :10])


def test_copy_memory_no_memory_baseline_matches_formula_exactly():
    for delay in (100, 37):
        expected = 10 * math.log(8) / (delay + 20)
        assert math.isclose(copy_memory_baseline(delay), expected)
        _, y = copy_memory(64, delay, generator=make_generator(2))
        log_probs = copy_memory_baseline_log_probs(delay)  # (T + 20, 9)
        ce = F.nll_loss(log_probs.expand(64, -1, -1).reshape(-1, 9), y.reshape(-1))
        assert math.isclose(ce.item(), expected, rel_tol=1e-12)
    assert round(copy_memory_baseline(100), 3) == 0.173


def test_copy_memory_datamodule():
    dm = CopyMemoryDataModule(delay=15, n_train=32, n_val=8, n_test=8, batch_size=4, seed=5)
    dm.setup()
    b = _first(dm.train_dataloader())
    assert b["inputs"].shape == b["targets"].shape == (4, 35)
    assert b["inputs"].dtype == b["targets"].dtype == torch.long
    assert dm.num_classes == 9 and dm.vocab_size == 14 and dm.pad_id == 0
    assert int(b["inputs"].min()) >= 4  # never a special id, so pad is unambiguous
    row_in, row_out = b["inputs"][0], b["targets"][0]
    assert dm.vocab.decode(row_in[:10]) == [dm.labels.decode(c) for c in row_out[-10:]]
    assert dm.vocab.decode(row_in[24:25]) == [":"]


def test_sequence_reversal_and_sorting():
    for task in ("reverse", "sort"):
        dm = SequenceTransformDataModule(
            task, n_symbols=6, min_len=3, max_len=7, n_train=40, n_val=8, n_test=8, batch_size=5
        )
        dm.setup()
        assert dm.target_vocab is dm.vocab and dm.target_vocab_size == 10
        b = _first(dm.train_dataloader())
        assert b["source"].dtype == torch.long and b["target"].dtype == torch.long
        assert torch.all(b["target"][:, 0] == dm.vocab.bos_id)
        assert torch.equal(b["target_lengths"], b["source_lengths"] + 2)
        for n in range(5):
            src = b["source"][n, : b["source_lengths"][n]].tolist()
            tgt = b["target"][n, : b["target_lengths"][n]].tolist()
            assert tgt[-1] == dm.vocab.eos_id
            want = src[::-1] if task == "reverse" else sorted(src)
            assert tgt[1:-1] == want
            assert 3 <= len(src) <= 7


def test_uniform_symbol_baseline_matches_cross_entropy():
    k = 7
    dm = SequenceTransformDataModule(n_symbols=k, n_train=20, n_val=2, n_test=2)
    dm.setup()
    symbols = torch.cat([ex["target"][1:-1] for ex in dm.splits["train"]])
    logits = torch.zeros(symbols.numel(), dm.target_vocab_size)
    logits[:, :4] = -math.inf  # never predict a special token
    ce = F.cross_entropy(logits, symbols)
    assert math.isclose(ce.item(), uniform_symbol_baseline(k), rel_tol=1e-6)
