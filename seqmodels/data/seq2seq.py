"""Encoder-decoder pairs: CMU-dictionary grapheme-to-phoneme, or the user's TSV pairs."""

from __future__ import annotations

import torch

from seqmodels.data.base import SequenceDataModule
from seqmodels.data.collate import PadCollate, fit_length
from seqmodels.data.corpora.cmudict_g2p import cmudict_pairs
from seqmodels.data.errors import DataError
from seqmodels.data.readers.delimited import Record, read_pairs
from seqmodels.data.records import encode_examples, long_tensor, split_records
from seqmodels.data.splits import make_generator
from seqmodels.data.vocab import Vocabulary

DATASETS = ("cmudict",)


class Seq2SeqDataModule(SequenceDataModule):
    """Source sequence in, target sequence out (BOS ... EOS), with two vocabularies.

    With ``path=None`` the embedded ``"cmudict"`` set is used: 126 k English words
    (characters) -> ARPAbet phonemes (whitespace tokens), first pronunciation, stress
    digits dropped unless ``keep_stress``. ``path`` is a TSV file of ``source<TAB>target``
    rows; ``val_path``/``test_path`` replace the seeded split.

    Args:
        source_level, target_level: tokenisation of each side (``"char"``, ``"word"``,
            ``"whitespace"``).
        max_length: T_max of sources; ``max_target_length`` of targets (BOS and EOS
            included). Longer ones are cut with ``truncate=True`` (the target keeps its
            EOS), or raise an error naming the file and line.
        limit: use a seeded random subset of at most this many pairs of ``path``/the
            embedded set (before splitting), e.g. for quick runs.

    Example:
        >>> dm = Seq2SeqDataModule(limit=200, batch_size=4)
        >>> dm.setup()
        >>> b = next(iter(dm.train_dataloader()))
        >>> b["source"].dtype, bool((b["target"][:, 0] == dm.target_vocab.bos_id).all())
        (torch.int64, True)
    """

    kind = "seq2seq"

    def __init__(
        self,
        dataset: str = "cmudict",
        path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        source_level: str = "char",
        target_level: str = "whitespace",
        lowercase: bool = False,
        keep_stress: bool = False,
        limit: int | None = None,
        min_freq: int = 1,
        source_vocab_path: str | None = None,
        target_vocab_path: str | None = None,
        skip_invalid: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        max_length: int | None = None,
        max_target_length: int | None = None,
        truncate: bool = False,
        sort_by_length: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
    ) -> None:
        super().__init__(
            batch_size,
            num_workers,
            seed,
            max_length,
            truncate,
            sort_by_length,
            val_fraction,
            test_fraction,
        )
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
        self.dataset_name, self.path = dataset, path
        self.val_path, self.test_path = val_path, test_path
        self.source_level, self.target_level = source_level, target_level
        self.lowercase, self.keep_stress, self.limit = lowercase, keep_stress, limit
        self.min_freq, self.skip_invalid = min_freq, skip_invalid
        self.source_vocab_path, self.target_vocab_path = source_vocab_path, target_vocab_path
        self.max_target_length = max_target_length

    def read(self, path: str | None) -> list[Record] | None:
        """Pairs of a TSV file (``None`` -> ``None``)."""
        return None if path is None else read_pairs(path, skip_invalid=self.skip_invalid)

    def _vocab(self, key: str, saved: str | None, texts: list, level: str) -> Vocabulary:
        restored = self.restore_vocab(key)
        if restored is not None:
            return restored
        if saved is not None:
            return Vocabulary.load(saved)
        return Vocabulary.build(
            texts, level=level, lowercase=self.lowercase, min_freq=self.min_freq
        )

    def build(self) -> None:
        if self.path is None:
            train, val, test = cmudict_pairs(self.keep_stress), None, None
        else:
            train = self.read(self.path)
            val, test = self.read(self.val_path), self.read(self.test_path)
        if self.limit is not None and self.limit < len(train):
            keep = torch.randperm(len(train), generator=make_generator(self.seed + 1))
            train = [train[i] for i in sorted(keep[: self.limit].tolist())]
        parts = split_records(
            train,
            val,
            test,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed,
        )
        src_texts = [r.source for r in parts["train"]]
        tgt_texts = [r.target for r in parts["train"]]
        self.vocab = self._vocab("vocab", self.source_vocab_path, src_texts, self.source_level)
        self.target_vocab = self._vocab(
            "target_vocab", self.target_vocab_path, tgt_texts, self.target_level
        )
        for split, records in parts.items():
            self.splits[split] = encode_examples(
                records,
                self._example,
                key="source",
                max_length=self.max_length,
                truncate=self.truncate,
            )

    def _example(self, r: Record) -> dict[str, torch.Tensor]:
        source = long_tensor(self.vocab.encode(r.source))  # (S,)
        target = long_tensor(self.target_vocab.encode(r.target, add_bos=True, add_eos=True))
        if source.numel() == 0 or target.numel() == 2:
            raise DataError(
                "empty source or target; expected tokens on both sides", path=r.path, line=r.line
            )
        limit = self.max_target_length
        if limit is not None and target.shape[0] > limit:
            if not self.truncate:
                fit_length(target, limit, False, origin=r.origin, what="target")
            target = torch.cat([target[: limit - 1], target[-1:]])
        return {"source": source, "target": target}

    def collate_fn(self) -> PadCollate:
        collate = super().collate_fn()
        collate.max_target_length = self.max_target_length
        return collate
