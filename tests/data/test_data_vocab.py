import json

import pytest

from seqmodels.data import Labels, Vocabulary
from seqmodels.data.errors import DataError
from seqmodels.data.tokenizers import get_tokenizer


def test_special_ids_are_stable():
    v = Vocabulary.build(["b a", "c"], level="word")
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)
    assert v.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]


def test_ids_ordered_by_frequency_then_token_independent_of_input_order():
    a = Vocabulary.build(["x y y z z z"], level="word")
    b = Vocabulary.build(["z z", "y x z y"], level="word")
    assert a.itos[4:] == ["z", "y", "x"]
    assert a == b


def test_unknown_tokens_map_to_unk_char_and_word():
    c = Vocabulary.build(["abc"], level="char")
    assert c.encode("abz") == [c.stoi["a"], c.stoi["b"], c.unk_id]
    w = Vocabulary.build(["the cat sat."], level="word")
    assert w.encode("the dog sat.") == [w.stoi["the"], w.unk_id, w.stoi["sat"], w.stoi["."]]


def test_encode_bos_eos_and_decode_stops_at_eos():
    v = Vocabulary.build(["hello world"], level="word")
    ids = v.encode("hello world", add_bos=True, add_eos=True)
    assert ids[0] == v.bos_id and ids[-1] == v.eos_id
    assert v.decode(ids + [v.stoi["hello"]]) == ["hello", "world"]
    assert v.decode_text(ids) == "hello world"
    assert v.decode(ids, skip_special=False)[0] == "<bos>"
    c = Vocabulary.build(["héllo"], level="char")
    assert c.decode(c.encode("héllo", add_eos=True)) == "héllo"


def test_min_freq_max_size_and_lowercase():
    v = Vocabulary.build(["A a a b b c"], level="word", lowercase=True, min_freq=2)
    assert v.itos[4:] == ["a", "b"]
    assert v.encode("A C") == [v.stoi["a"], v.unk_id]
    assert len(Vocabulary.build(["a a b b c"], level="word", max_size=5)) == 5


def test_accepts_token_lists():
    v = Vocabulary.build([["New York", "is"], ["is"]], level="whitespace")
    assert v.encode(["New York", "is"]) == [v.stoi["New York"], v.stoi["is"]]


def test_state_dict_is_json_and_round_trips(tmp_path):
    v = Vocabulary.build(["Ünïcode text, with punctuation!"], level="word", lowercase=True)
    state = json.loads(json.dumps(v.state_dict()))
    w = Vocabulary.from_state_dict(state)
    assert w == v and w.lowercase and w.level == "word"
    assert w.encode("TEXT unseen") == v.encode("TEXT unseen")
    path = tmp_path / "vocab.json"
    v.save(path)
    u = Vocabulary.load(path)
    assert u.itos == v.itos
    assert u.encode("never seen") == [u.unk_id, u.unk_id]


def test_from_state_dict_rejects_foreign_dicts():
    with pytest.raises(ValueError, match="format"):
        Vocabulary.from_state_dict({"tokens": ["a"]})


def test_tokenizers():
    assert get_tokenizer("word")("don't stop") == ["don", "'", "t", "stop"]
    assert get_tokenizer("char")("a\nb") == ["a", "\n", "b"]
    with pytest.raises(ValueError, match="unknown tokeniser"):
        get_tokenizer("bpe")


def test_labels_sorted_and_unknown_label_names_file_and_line():
    labels = Labels.build(["m", "f", "m"])
    assert labels.names == ["f", "m"] and labels.encode("m") == 1
    assert Labels.from_state_dict(labels.state_dict()) == labels
    with pytest.raises(DataError, match=r"x\.csv, line 4: unknown label 'q'; expected one of"):
        labels.encode("q", path="x.csv", line=4)
