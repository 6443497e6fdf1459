"""Per-token tagging (many-to-many) on CoNLL-U: the Turkish treebanks or the user's files."""

from __future__ import annotations

import torch

from seqmodels.data.base import SequenceDataModule
from seqmodels.data.corpora.turkish_treebank import turkish_treebank_files
from seqmodels.data.readers.conllu import Sentence, read_conllu
from seqmodels.data.records import encode_examples, long_tensor, split_records
from seqmodels.data.vocab import Labels, Vocabulary

DATASETS = ("turkish",)


class TaggingDataModule(SequenceDataModule):
    """Tag every token of a sentence, e.g. part of speech (UPOS).

    With ``path=None`` the embedded ``"turkish"`` treebanks are used (web + Wikipedia,
    4,851 sentences, 14 UPOS tags). ``path`` is a CoNLL-U file; ``val_path`` /
    ``test_path`` replace the seeded split. Inputs are word ids of :attr:`vocab`
    (``level="whitespace"``: each CoNLL-U FORM is one token), targets tag ids of
    :attr:`labels`, padded with -100.

    Args:
        tag_column: CoNLL-U column of the tags (``"upos"``, ``"xpos"``, ``"deprel"``...).
        labels: the fixed tag set; by default the tags of ``path`` (an unknown tag in
            ``val_path``/``test_path`` is an error naming the file and line).
        lowercase, min_freq, max_vocab_size, vocab_path: vocabulary options.

    Example:
        >>> dm = TaggingDataModule(batch_size=4)
        >>> dm.setup()
        >>> b = next(iter(dm.train_dataloader()))
        >>> b["inputs"].shape == b["targets"].shape, dm.num_classes
        (True, 14)
    """

    kind = "many_to_many"

    def __init__(
        self,
        dataset: str = "turkish",
        path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        tag_column: str = "upos",
        lowercase: bool = False,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        vocab_path: str | None = None,
        labels: list[str] | None = None,
        skip_invalid: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        max_length: int | None = None,
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
        self.tag_column, self.skip_invalid = tag_column, skip_invalid
        self.lowercase, self.min_freq = lowercase, min_freq
        self.max_vocab_size, self.vocab_path = max_vocab_size, vocab_path
        self.fixed_labels = labels

    def read(self, path: str | None) -> list[Sentence] | None:
        """Sentences of a CoNLL-U file (``None`` -> ``None``)."""
        if path is None:
            return None
        return read_conllu(path, tag_column=self.tag_column, skip_invalid=self.skip_invalid)

    def build(self) -> None:
        if self.path is None:
            files = turkish_treebank_files()
            train = [s for f in files for s in read_conllu(f, tag_column=self.tag_column)]
            val = test = None
        else:
            train = self.read(self.path)
            val, test = self.read(self.val_path), self.read(self.test_path)
        parts = split_records(
            train,
            val,
            test,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed,
        )
        self.labels = (
            self.restore_labels()
            or (Labels(self.fixed_labels) if self.fixed_labels else None)
            or Labels.build(t for s in train for t in s.tags)
        )
        self.vocab = (
            self.restore_vocab()
            or (Vocabulary.load(self.vocab_path) if self.vocab_path else None)
            or Vocabulary.build(
                (s.tokens for s in parts["train"]),
                level="whitespace",
                lowercase=self.lowercase,
                min_freq=self.min_freq,
                max_size=self.max_vocab_size,
            )
        )
        for split, sentences in parts.items():
            self.splits[split] = encode_examples(
                sentences,
                self._example,
                key="inputs",
                max_length=self.max_length,
                truncate=self.truncate,
                per_step_targets=True,
            )

    def _example(self, s: Sentence) -> dict[str, torch.Tensor]:
        tags = [
            self.labels.encode(t, path=s.path, line=n) for t, n in zip(s.tags, s.lines, strict=True)
        ]
        return {
            "inputs": long_tensor(self.vocab.encode(s.tokens)),  # (T,)
            "targets": long_tensor(tags),  # (T,)
        }
