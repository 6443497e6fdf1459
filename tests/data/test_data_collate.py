import pytest
import torch

from seqmodels.data import DataError, PadCollate, split_indices
from seqmodels.data.splits import chronological_split, make_generator


def _examples():
    return [
        {"inputs": torch.tensor([5, 6]), "targets": torch.tensor([1, 0]), "index": 0},
        {"inputs": torch.tensor([7, 8, 9]), "targets": torch.tensor([2, 2, 1]), "index": 1},
        {"inputs": torch.tensor([4]), "targets": torch.tensor([3]), "index": 2},
    ]


def test_many_to_many_pads_inputs_with_pad_id_and_targets_with_ignore_index():
    b = PadCollate("many_to_many", pad_id=0)(_examples())
    assert b["inputs"].tolist() == [[5, 6, 0], [7, 8, 9], [4, 0, 0]]
    assert b["targets"].tolist() == [[1, 0, -100], [2, 2, 1], [3, -100, -100]]
    assert b["lengths"].tolist() == [2, 3, 1] and b["lengths"].dtype == torch.long
    assert b["index"].tolist() == [0, 1, 2]


def test_sorting_by_length_keeps_rows_together():
    b = PadCollate("many_to_many", sort_by_length=True)(_examples())
    assert b["lengths"].tolist() == [3, 2, 1]
    assert b["index"].tolist() == [1, 0, 2]
    assert b["inputs"][0].tolist() == [7, 8, 9] and b["targets"][1].tolist() == [1, 0, -100]


def test_many_to_one_float_inputs_and_targets():
    exs = [
        {"inputs": torch.ones(2, 3), "targets": torch.tensor(1.5)},
        {"inputs": torch.ones(4, 3), "targets": torch.tensor(0.5)},
    ]
    b = PadCollate("many_to_one")(exs)
    assert b["inputs"].shape == (2, 4, 3) and b["inputs"].dtype == torch.float32
    assert b["inputs"][0, 2:].abs().sum() == 0
    assert b["targets"].tolist() == [1.5, 0.5] and b["index"].tolist() == [-1, -1]


def test_per_step_float_targets_pad_with_zero():
    exs = [
        {"inputs": torch.ones(1, 1), "targets": torch.tensor([[2.0, 3.0]])},
        {"inputs": torch.ones(2, 1), "targets": torch.ones(2, 2)},
    ]
    b = PadCollate("many_to_many")(exs)
    assert b["targets"].shape == (2, 2, 2) and b["targets"][0, 1].tolist() == [0.0, 0.0]


def test_truncation_cuts_inputs_and_per_step_targets():
    b = PadCollate("many_to_many", max_length=2, truncate=True)(_examples())
    assert b["inputs"].shape == (3, 2) and b["lengths"].tolist() == [2, 2, 1]
    assert b["targets"][1].tolist() == [2, 2]


def test_too_long_without_truncation_names_example_and_origin():
    exs = _examples()
    with pytest.raises(DataError, match=r"example 1: sequence has 3 steps, more than max_length=2"):
        PadCollate("many_to_many", max_length=2)(exs)
    exs[1]["origin"] = ("data.tsv", 12)
    with pytest.raises(DataError, match=r"^data\.tsv, line 12: example 1"):
        PadCollate("many_to_many", max_length=2)(exs)


def test_seq2seq_collate_and_target_truncation_keeps_eos():
    exs = [
        {"source": torch.tensor([4, 5, 6]), "target": torch.tensor([2, 7, 8, 9, 3])},
        {"source": torch.tensor([4]), "target": torch.tensor([2, 7, 3])},
    ]
    b = PadCollate("seq2seq", pad_id=0)(exs)
    assert b["source"].tolist() == [[4, 5, 6], [4, 0, 0]]
    assert b["target"].tolist() == [[2, 7, 8, 9, 3], [2, 7, 3, 0, 0]]
    assert b["source_lengths"].tolist() == [3, 1] and b["target_lengths"].tolist() == [5, 3]
    cut = PadCollate("seq2seq", max_target_length=3, truncate=True)(exs)
    assert cut["target"][0].tolist() == [2, 7, 3]
    with pytest.raises(DataError, match="target has 5 steps"):
        PadCollate("seq2seq", max_target_length=3)(exs)


def test_unknown_kind_and_empty_batch():
    with pytest.raises(ValueError, match="unknown collate kind"):
        PadCollate("one_to_many")
    with pytest.raises(ValueError, match="empty"):
        PadCollate()([])


def test_split_indices_partition_deterministic_and_seed_dependent():
    tr, va, te = split_indices(100, 0.1, 0.2, seed=3)
    assert sorted(tr + va + te) == list(range(100))
    assert (len(tr), len(va), len(te)) == (70, 10, 20)
    assert split_indices(100, 0.1, 0.2, seed=3) == (tr, va, te)
    assert split_indices(100, 0.1, 0.2, seed=4)[0] != tr
    with pytest.raises(ValueError, match="leave no training|left for training"):
        split_indices(2, 0.5, 0.5)
    with pytest.raises(ValueError, match="val_fraction"):
        split_indices(10, 1.5, 0.0)


def test_chronological_split_is_ordered():
    tr, va, te = chronological_split(10, 0.2, 0.1)
    assert list(tr) == list(range(7)) and list(va) == [7, 8] and list(te) == [9]


def test_generator_is_seeded():
    a = torch.rand(3, generator=make_generator(1))
    assert torch.equal(a, torch.rand(3, generator=make_generator(1)))
