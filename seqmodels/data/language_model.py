"""Character- and word-level language modelling on contiguous streams (truncated BPTT)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from torch.utils.data import DataLoader

from seqmodels.data.base import SequenceDataModule
from seqmodels.data.corpora.pydoc_topics import pydoc_topics
from seqmodels.data.corpora.stdlib_sources import STDLIB_FILES, corpus_digest, stdlib_sources
from seqmodels.data.readers.text import read_text_documents
from seqmodels.data.splits import EmptySplitError, split_indices
from seqmodels.data.streams import StreamBatches
from seqmodels.data.vocab import Vocabulary

log = logging.getLogger("seqmodels.data")

CORPORA = ("pydoc_topics", "stdlib")
SPLIT_BY = ("auto", "document", "contiguous")


def _cut(text: str, fraction: float) -> int:
    """A cut position near ``fraction`` of ``text``, moved back to a line start if close."""
    pos = round(len(text) * fraction)
    newline = text.rfind("\n", 0, pos)
    return newline + 1 if newline >= 0 and pos - newline < 200 else pos


def contiguous_split(
    docs: list[tuple[str, str]], val_fraction: float, test_fraction: float
) -> dict[str, list[tuple[str, str]]]:
    """Cut every document into leading train, middle validation and final test parts."""
    out: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for name, text in docs:
        a = _cut(text, 1.0 - val_fraction - test_fraction)
        b = _cut(text, 1.0 - test_fraction)
        for split, part in (("train", text[:a]), ("val", text[a:b]), ("test", text[b:])):
            if part:
                out[split].append((name, part))
    return out


def split_key(split: str) -> str:
    """The fraction setting of ``split``: ``"val"`` -> ``"val_fraction"``."""
    return f"{split}_fraction"


class LanguageModelDataModule(SequenceDataModule):
    """Next-token prediction over contiguous streams, laid out for truncated BPTT.

    Args:
        corpus: embedded text when ``path`` is ``None``: ``"pydoc_topics"`` (CPython's
            documentation topics) or ``"stdlib"`` (source of :data:`STDLIB_FILES`).
        path: a text file or a folder of text files (``file_pattern``) to use instead.
        files: standard-library file names for ``corpus="stdlib"`` (default: all).
        level: ``"char"``, ``"word"`` (words and punctuation) or ``"whitespace"``.
        max_length: chunk length k of truncated BPTT.
        split_by: ``"document"`` (whole documents go to one split, by ``seed``),
            ``"contiguous"`` (each document is cut into train/val/test parts, in order),
            or ``"auto"``: documents when there are at least 20, else contiguous.
        min_freq, max_vocab_size, lowercase: vocabulary options (built on train only).
        vocab_path: a saved :class:`Vocabulary` to use instead of building one.
        truncate: ignored (streams are always cut into chunks of ``max_length``).

    Batches (see :mod:`seqmodels.data.streams`): ``inputs``/``targets`` ``(N, k)`` long,
    ``lengths`` ``(N,)``, ``reset`` ``(N,)`` bool. Padded target steps are -100.

    Example:
        >>> dm = LanguageModelDataModule(batch_size=4, max_length=32)
        >>> dm.setup()
        >>> b = next(iter(dm.train_dataloader()))
        >>> b["inputs"].shape, b["reset"].all().item(), dm.vocab.level
        (torch.Size([4, 32]), True, 'char')
    """

    def __init__(
        self,
        corpus: str = "pydoc_topics",
        path: str | None = None,
        files: list[str] | None = None,
        level: str = "char",
        lowercase: bool = False,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        vocab_path: str | None = None,
        file_pattern: str = "*.txt",
        encoding: str = "utf-8",
        split_by: str = "auto",
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        max_length: int = 128,
        truncate: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
    ) -> None:
        super().__init__(
            batch_size, num_workers, seed, max_length, truncate, False, val_fraction, test_fraction
        )
        if corpus not in CORPORA:
            raise ValueError(f"unknown corpus {corpus!r}; expected one of {CORPORA}")
        if split_by not in SPLIT_BY:
            raise ValueError(f"unknown split_by {split_by!r}; expected one of {SPLIT_BY}")
        self.corpus, self.path, self.files = corpus, path, files
        self.level, self.lowercase = level, lowercase
        self.min_freq, self.max_vocab_size, self.vocab_path = min_freq, max_vocab_size, vocab_path
        self.file_pattern, self.encoding, self.split_by = file_pattern, encoding, split_by
        self.streams: dict[str, StreamBatches] = {}
        self.digest: str | None = None

    def load_documents(self) -> list[tuple[str, str]]:
        """The ``(name, text)`` documents of the configured corpus or path."""
        if self.path is not None:
            return read_text_documents(
                Path(self.path), pattern=self.file_pattern, encoding=self.encoding
            )
        if self.corpus == "stdlib":
            return stdlib_sources(tuple(self.files) if self.files else STDLIB_FILES)
        return pydoc_topics()

    def split_documents(self, docs: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
        """Train/val/test documents according to ``split_by``."""
        by = self.split_by
        if by == "auto":
            by = "document" if len(docs) >= 20 else "contiguous"
        if by == "contiguous":
            return contiguous_split(docs, self.val_fraction, self.test_fraction)
        train, val, test = split_indices(
            len(docs), self.val_fraction, self.test_fraction, self.seed
        )
        return {
            k: [docs[i] for i in idx] for k, idx in (("train", train), ("val", val), ("test", test))
        }

    def build(self) -> None:
        docs = self.load_documents()
        self.digest = corpus_digest(docs)
        parts = self.split_documents(docs)
        vocab = self.restore_vocab()
        if vocab is None and self.vocab_path is not None:
            vocab = Vocabulary.load(self.vocab_path)
        if vocab is None:
            vocab = Vocabulary.build(
                (text for _, text in parts["train"]),
                level=self.level,
                lowercase=self.lowercase,
                min_freq=self.min_freq,
                max_size=self.max_vocab_size,
            )
        self.vocab = vocab
        rank, world = 0, 1
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            rank, world = trainer.global_rank, trainer.world_size
        fractions = {"train": 0.0, "val": self.val_fraction, "test": self.test_fraction}
        for split, split_docs in parts.items():
            if not split_docs and fractions[split] > 0:
                raise EmptySplitError(
                    f"the {split} split is empty: {len(docs)} document(s) of "
                    f"{sum(len(t) for _, t in docs)} characters leave no text for it "
                    f"({split_key(split)}={fractions[split]}); expected more text (at least about "
                    f"{math.ceil(1 / fractions[split])} characters), a larger "
                    f"{split_key(split)}, or {split_key(split)}=0"
                )
            if not split_docs:
                continue
            self.streams[split] = StreamBatches.from_documents(
                [vocab.encode(text) for _, text in split_docs],
                self.batch_size,
                self.max_length,
                bos_id=vocab.bos_id,
                eos_id=vocab.eos_id,
                pad_id=vocab.pad_id,
                rank=rank,
                world_size=world,
                name=f"{split} stream",
            )
        log.info(
            "language model corpus %s: %d documents, sha256 %s",
            self.path or self.corpus,
            len(docs),
            self.digest,
        )

    def extra_state(self) -> dict[str, str]:
        return {"corpus_digest": self.digest} if self.digest else {}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        if split not in self.streams:
            raise ValueError(f"the {split} split is empty (check val_fraction/test_fraction)")
        return DataLoader(
            self.streams[split], batch_size=None, shuffle=False, num_workers=self.num_workers
        )
