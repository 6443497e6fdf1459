import pytest
import torch

from seqmodels.data import DataError, DataFileNotFoundError, LanguageModelDataModule, StreamBatches
from seqmodels.data.corpora.stdlib_sources import STDLIB_FILES, stdlib_sources


def _docs():
    return [list(range(10, 10 + n)) for n in (7, 2, 12, 4, 9, 3)]


def test_streams_rows_continue_and_docs_start_at_chunk_starts():
    s = StreamBatches.from_documents(_docs(), batch_size=2, chunk_length=4, bos_id=2, eos_id=3)
    # rebuild each row's stream from consecutive batches
    rows = [torch.cat([s[b]["inputs"][n] for b in range(len(s))]) for n in range(2)]
    tgts = [torch.cat([s[b]["targets"][n] for b in range(len(s))]) for n in range(2)]
    for x, y in zip(rows, tgts, strict=True):
        valid = y != -100
        # the target of step t is the input of step t+1 inside a document
        same_doc = valid[:-1] & valid[1:] & (x[1:] != 2)
        assert torch.equal(y[:-1][same_doc], x[1:][same_doc])
    for b in range(len(s)):
        batch = s[b]
        assert batch["inputs"].shape == (2, 4) and batch["reset"].dtype == torch.bool
        starts_doc = batch["inputs"][:, 0] == 2
        assert torch.equal(batch["reset"], starts_doc | (b == 0))
        # padding only at the end of a chunk, and lengths count the real steps
        assert torch.equal(batch["lengths"], (batch["targets"] != -100).sum(1))
        assert torch.all(batch["inputs"][batch["targets"] == -100] == 0)


def test_streams_keep_all_tokens_up_to_the_last_partial_batch():
    docs = _docs()
    s = StreamBatches.from_documents(docs, batch_size=2, chunk_length=4, bos_id=2, eos_id=3)
    total = sum(len(d) + 1 for d in docs)
    assert s.num_tokens + s.dropped_tokens == total
    one = StreamBatches.from_documents(docs, batch_size=1, chunk_length=4, bos_id=2, eos_id=3)
    assert one.dropped_tokens == 0 and one.num_tokens == total


def test_streams_shard_rows_by_rank():
    kw = dict(batch_size=2, chunk_length=3, bos_id=2, eos_id=3, world_size=2)
    full = StreamBatches.from_documents(_docs(), batch_size=4, chunk_length=3, bos_id=2, eos_id=3)
    r0 = StreamBatches.from_documents(_docs(), rank=0, **kw)
    r1 = StreamBatches.from_documents(_docs(), rank=1, **kw)
    assert torch.equal(torch.cat([r0.inputs, r1.inputs], 1), full.inputs)


def test_streams_too_small_raises():
    with pytest.raises(ValueError, match="cannot fill 8 rows"):
        StreamBatches.from_documents([[5, 6]], batch_size=8, chunk_length=4, bos_id=2, eos_id=3)


def test_pydoc_char_lm_datamodule():
    dm = LanguageModelDataModule(batch_size=8, max_length=64, seed=1)
    dm.setup()
    assert dm.vocab.level == "char" and 80 < dm.vocab_size < 200
    batches = list(dm.train_dataloader())
    b0, b1 = batches[0], batches[1]
    assert b0["inputs"].shape == b0["targets"].shape == (8, 64)
    assert b0["inputs"].dtype == torch.long and b0["lengths"].shape == (8,)
    assert b0["reset"].all() and not b1["reset"].all()
    # row n of batch 1 continues row n of batch 0 (where no document starts)
    cont = ~b1["reset"]
    assert torch.equal(b1["inputs"][cont, 0], b0["targets"][cont, -1])
    text = dm.vocab.decode(b1["inputs"][0])
    assert isinstance(text, str) and len(text) == 64
    for split in ("val", "test"):
        assert next(iter(getattr(dm, f"{split}_dataloader")()))["inputs"].shape == (8, 64)


def test_lm_deterministic_for_a_seed_and_document_split_depends_on_it():
    def first(seed):
        dm = LanguageModelDataModule(level="word", batch_size=4, max_length=16, seed=seed)
        dm.setup()
        return dm.vocab, next(iter(dm.train_dataloader()))["inputs"]

    v0, a = first(0)
    v0b, b = first(0)
    _, c = first(1)
    assert v0 == v0b and torch.equal(a, b) and not torch.equal(a, c)


def test_stdlib_corpus_uses_fixed_file_list():
    assert "bisect.py" in STDLIB_FILES and len(set(STDLIB_FILES)) == len(STDLIB_FILES)
    docs = stdlib_sources(STDLIB_FILES)
    assert [n for n, _ in docs] == list(STDLIB_FILES)
    dm = LanguageModelDataModule(
        corpus="stdlib", files=["bisect.py", "heapq.py"], batch_size=2, max_length=50
    )
    dm.setup()
    assert "def" in dm.vocab.decode(torch.cat(list(dm.streams["train"].inputs.flatten(0, 1))))
    assert len(dm.state_dict()["corpus_digest"]) == 64
    with pytest.raises(DataFileNotFoundError, match="nonexistent_module.py"):
        stdlib_sources(["nonexistent_module.py"])


def test_text_file_contiguous_split_and_vocab_reuse(tmp_path):
    text = "".join(f"line {i} of the user's corpus\n" for i in range(400))
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    dm = LanguageModelDataModule(path=str(path), batch_size=2, max_length=32, val_fraction=0.1)
    dm.setup()
    train = "".join(dm.vocab.decode_text(r) for r in dm.streams["train"].inputs[:, 0])
    assert train.startswith("line 0 of")
    test = dm.vocab.decode_text(dm.streams["test"].inputs[0, 0])
    assert test.startswith("line 3")  # the test part is the end of the file
    # a checkpointed vocabulary is reused by a fresh DataModule on other text
    other = tmp_path / "other.txt"
    other.write_text("zzz " * 200)
    dm2 = LanguageModelDataModule(path=str(other), batch_size=2, max_length=32)
    dm2.load_state_dict(dm.state_dict())
    dm2.setup()
    assert dm2.vocab == dm.vocab
    assert dm2.streams["train"].inputs[0, 0, 1].item() == dm.vocab.unk_id
    vocab_file = tmp_path / "v.json"
    dm.vocab.save(vocab_file)
    dm3 = LanguageModelDataModule(
        path=str(other), vocab_path=str(vocab_file), max_length=8, batch_size=2
    )
    dm3.setup()
    assert dm3.vocab == dm.vocab


def test_text_folder_reader_and_errors(tmp_path):
    (tmp_path / "sub").mkdir()
    for i in range(3):
        (tmp_path / "sub" / f"d{i}.txt").write_text(f"document number {i}\n" * 30)
    (tmp_path / "skip.md").write_text("QQQ")
    dm = LanguageModelDataModule(path=str(tmp_path), split_by="contiguous", batch_size=1)
    dm.setup()
    assert "Q" not in dm.vocab and "d" in dm.vocab
    with pytest.raises(DataFileNotFoundError, match="missing.txt"):
        LanguageModelDataModule(path=str(tmp_path / "missing.txt")).setup()
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match=r"empty\.txt: file is empty"):
        LanguageModelDataModule(path=str(tmp_path / "empty.txt")).setup()
    (tmp_path / "bad.txt").write_bytes(b"ok\nfine\n\xff bad\n")
    with pytest.raises(DataError, match=r"bad\.txt, line 3: byte 0xff is not valid utf-8"):
        LanguageModelDataModule(path=str(tmp_path / "bad.txt")).setup()
    with pytest.raises(DataError, match="no files matching"):
        LanguageModelDataModule(path=str(tmp_path), file_pattern="*.csv").setup()


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown corpus"):
        LanguageModelDataModule(corpus="wikipedia")
    with pytest.raises(ValueError, match="split_by"):
        LanguageModelDataModule(split_by="random")


def test_missing_data_package_says_what_to_install():
    from seqmodels.data.corpora.installed import MissingPackageError, package_file

    with pytest.raises(MissingPackageError, match=r"pip install 'seqmodels\[data\]'"):
        package_file("no-such-distribution-xyz", "x/y.txt")
