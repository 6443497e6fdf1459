"""Sequence classification and regression (many-to-one) from embedded data or CSV/TSV files."""

from __future__ import annotations

from typing import Any

import torch

from seqmodels.data.base import SequenceDataModule
from seqmodels.data.corpora.names_gender import names_gender
from seqmodels.data.errors import DataError
from seqmodels.data.readers.delimited import Record, read_labelled
from seqmodels.data.records import encode_examples, long_tensor, split_records
from seqmodels.data.vocab import Labels, Vocabulary

DATASETS = ("names",)


class SequenceClassificationDataModule(SequenceDataModule):
    """Many-to-one: a text (or numeric sequence) in, a class (or a number) out.

    With ``path=None`` the embedded data set is used: ``"names"`` (US Census first
    names -> ``female``/``male``, character level). ``path`` is a CSV/TSV file with a
    header naming ``text_column`` and ``label_column``; ``val_path``/``test_path``
    replace the seeded split of ``path`` by ``val_fraction``/``test_fraction``.

    Args:
        input_type: ``"text"`` (tokenised by ``level``: ``"char"``, ``"word"``,
            ``"whitespace"``) or ``"sequence"``: steps separated by spaces, features of
            a step by ``feature_separator`` (``"0.1,2 0.3,4"``) -> float inputs.
        target_type: ``"class"`` (targets are class ids of :attr:`labels`) or
            ``"regression"`` (float targets ``(N,)``).
        labels: the fixed list of classes; by default those of ``path`` (an unknown
            label in ``val_path``/``test_path`` is then an error naming file and line).
        skip_invalid: skip and count bad rows instead of raising.
        vocab_path: a saved :class:`Vocabulary` to use instead of building one.

    Example:
        >>> dm = SequenceClassificationDataModule(batch_size=4, seed=0)
        >>> dm.setup()
        >>> b = next(iter(dm.train_dataloader()))
        >>> b["inputs"].dtype, b["targets"].shape, dm.labels.names
        (torch.int64, torch.Size([4]), ['female', 'male'])
    """

    kind = "many_to_one"

    def __init__(
        self,
        dataset: str = "names",
        path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        text_column: str | int = "text",
        label_column: str | int = "label",
        header: bool = True,
        delimiter: str | None = None,
        input_type: str = "text",
        target_type: str = "class",
        feature_separator: str = ",",
        level: str = "char",
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
        if input_type not in ("text", "sequence"):
            raise ValueError(f"input_type must be 'text' or 'sequence', got {input_type!r}")
        if target_type not in ("class", "regression"):
            raise ValueError(f"target_type must be 'class' or 'regression', got {target_type!r}")
        self.dataset_name, self.path = dataset, path
        self.val_path, self.test_path = val_path, test_path
        self.read_options: dict[str, Any] = dict(
            text_column=text_column,
            label_column=label_column,
            header=header,
            delimiter=delimiter,
            input_type=input_type,
            target_type=target_type,
            feature_separator=feature_separator,
            skip_invalid=skip_invalid,
        )
        self.input_type, self.target_type = input_type, target_type
        self.level, self.lowercase = level, lowercase
        self.min_freq, self.max_vocab_size, self.vocab_path = min_freq, max_vocab_size, vocab_path
        self.fixed_labels = labels

    def read(self, path: str | None) -> list[Record] | None:
        """Records of ``path`` (``None`` -> ``None``)."""
        return None if path is None else read_labelled(path, **self.read_options)

    def build(self) -> None:
        if self.path is None:
            train, val, test = names_gender(), None, None
        else:
            train, val, test = (
                self.read(self.path),
                self.read(self.val_path),
                self.read(self.test_path),
            )
        parts = split_records(
            train,
            val,
            test,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed,
        )
        if self.target_type == "class":
            self.labels = (
                self.restore_labels()
                or (Labels(self.fixed_labels) if self.fixed_labels else None)
                or Labels.build(r.target for r in train)
            )
        else:
            self.output_size = 1
        if self.input_type == "text":
            self.vocab = (
                self.restore_vocab()
                or (Vocabulary.load(self.vocab_path) if self.vocab_path else None)
                or Vocabulary.build(
                    (r.source for r in parts["train"]),
                    level=self.level,
                    lowercase=self.lowercase,
                    min_freq=self.min_freq,
                    max_size=self.max_vocab_size,
                )
            )
        else:
            self.input_size = len(train[0].source[0])
        for split, records in parts.items():
            self.splits[split] = encode_examples(
                records,
                self._example,
                key="inputs",
                max_length=self.max_length,
                truncate=self.truncate,
            )

    def _example(self, r: Record) -> dict[str, torch.Tensor]:
        if self.input_type == "text":
            inputs = long_tensor(self.vocab.encode(r.source))  # (T,)
            if inputs.numel() == 0:
                raise DataError(
                    "text has no tokens; expected at least one", path=r.path, line=r.line
                )
        else:
            inputs = torch.tensor(r.source, dtype=torch.float32)  # (T, F)
            if inputs.shape[1] != self.input_size:
                raise DataError(
                    f"sequence has {inputs.shape[1]} features per step; expected "
                    f"{self.input_size} like the first row",
                    path=r.path,
                    line=r.line,
                )
        if self.target_type == "class":
            target = torch.tensor(self.labels.encode(r.target, path=r.path, line=r.line))
        else:
            target = torch.tensor(float(r.target), dtype=torch.float32)
        return {"inputs": inputs, "targets": target}
