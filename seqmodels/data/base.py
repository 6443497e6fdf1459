"""The base of every sequence DataModule: splits, loaders, sizes and checkpointed state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler

from seqmodels.data.collate import PadCollate
from seqmodels.data.splits import (
    EmptySplitError,
    EpochShuffleSampler,
    make_generator,
    min_examples,
    seed_worker,
)
from seqmodels.data.vocab import Labels, Vocabulary


class ExampleDataset(Dataset):
    """A list of example dicts (see :mod:`seqmodels.data.collate`) as a map-style dataset."""

    def __init__(self, examples: Sequence[dict[str, Any]]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.examples[i]


class SequenceDataModule(L.LightningDataModule):
    """Shared behaviour of the DataModules: build once, then serve loaders.

    Subclasses implement :meth:`build`, which fills ``self.splits`` with
    ``{"train": [...], "val": [...], "test": [...]}`` lists of examples and sets the
    size attributes. ``kind`` (``"many_to_one"``, ``"many_to_many"``, ``"seq2seq"``)
    picks the collate layout. The vocabularies and label sets are saved in the
    checkpoint (:meth:`state_dict`) and reused when one is loaded, so ids stay stable.
    """

    kind = "many_to_one"

    def __init__(
        self,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        max_length: int | None = None,
        truncate: bool = False,
        sort_by_length: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.max_length = max_length
        self.truncate = truncate
        self.sort_by_length = sort_by_length
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.drop_last = drop_last
        # What a model needs to size itself; filled by build().
        self.vocab: Vocabulary | None = None
        self.target_vocab: Vocabulary | None = None
        self.labels: Labels | None = None
        self.input_size: int | None = None
        self.output_size: int | None = None
        self.splits: dict[str, list[dict[str, Any]]] = {}
        self._restored: dict[str, Any] = {}
        self._built = False

    # ------------------------------------------------------------------ sizes
    @property
    def vocab_size(self) -> int | None:
        """Number of input token ids (``None`` for float inputs)."""
        return None if self.vocab is None else len(self.vocab)

    @property
    def target_vocab_size(self) -> int | None:
        """Number of target token ids (seq2seq)."""
        return None if self.target_vocab is None else len(self.target_vocab)

    @property
    def num_classes(self) -> int | None:
        """Number of classes or tags (``None`` for regression)."""
        return None if self.labels is None else len(self.labels)

    @property
    def pad_id(self) -> int:
        """Padding id of token inputs and seq2seq targets."""
        return Vocabulary.pad_id

    # ------------------------------------------------------------------ build
    def build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Build every split once (all stages share one build, so splits agree)."""
        if not self._built:
            self.build()
            self._check_splits()
            self._built = True

    def _check_splits(self) -> None:
        """Fail now, not after training, when a validation or test split came out empty."""
        for split, fraction in (("val", self.val_fraction), ("test", self.test_fraction)):
            examples = self.splits.get(split)
            if examples is not None and not examples and fraction > 0:
                raise EmptySplitError(
                    f"the {split} split is empty ({split}_fraction={fraction}, "
                    f"{len(self.splits.get('train', []))} training examples); expected at "
                    f"least {min_examples(self.val_fraction, self.test_fraction)} examples "
                    f"in all, more data, or {split}_fraction=0"
                )

    def restored(self, key: str) -> Any:
        """State loaded from a checkpoint (``state_dict``) under ``key``, or ``None``."""
        return self._restored.get(key)

    def state_dict(self) -> dict[str, Any]:
        """Vocabularies and labels as plain dicts; Lightning stores this in checkpoints."""
        state: dict[str, Any] = {}
        if self.vocab is not None:
            state["vocab"] = self.vocab.state_dict()
        if self.target_vocab is not None:
            state["target_vocab"] = self.target_vocab.state_dict()
        if self.labels is not None:
            state["labels"] = self.labels.state_dict()
        state.update(self.extra_state())
        return state

    def extra_state(self) -> dict[str, Any]:
        """Further JSON-able state of a subclass (e.g. normalisation statistics)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Reuse checkpointed vocabularies/labels; rebuilds the splits if already built."""
        self._restored = dict(state_dict)
        if self._built:
            self._built = False
            self.setup()

    def restore_vocab(self, key: str = "vocab") -> Vocabulary | None:
        """The checkpointed vocabulary under ``key``, if any."""
        state = self.restored(key)
        return None if state is None else Vocabulary.from_state_dict(state)

    def restore_labels(self) -> Labels | None:
        """The checkpointed label set, if any."""
        state = self.restored("labels")
        return None if state is None else Labels.from_state_dict(state)

    # ---------------------------------------------------------------- loaders
    def collate_fn(self) -> PadCollate:
        """The collate function for this DataModule's ``kind`` and length settings."""
        return PadCollate(
            self.kind,
            pad_id=self.pad_id,
            max_length=self.max_length,
            truncate=self.truncate,
            sort_by_length=self.sort_by_length,
        )

    def dataset(self, split: str) -> ExampleDataset:
        """The built examples of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        self.setup()
        return ExampleDataset(self.splits[split])

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        """``shuffle``: an :class:`EpochShuffleSampler`, so epoch ``e``'s order is a function
        of ``(seed, e)`` alone (Lightning calls its ``set_epoch``) and a resumed run repeats
        the uninterrupted one. The loader's own generator (seeded too) only draws the
        workers' base seeds, so iterating never touches the global RNG."""
        dataset = self.dataset(split)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(len(dataset), self.seed)
            if shuffle
            else self._eval_sampler(dataset),
            num_workers=self.num_workers,
            collate_fn=self.collate_fn(),
            generator=make_generator(self.seed) if shuffle else None,
            worker_init_fn=seed_worker if self.num_workers > 0 else None,
            persistent_workers=self.num_workers > 0,
            drop_last=self.drop_last and shuffle,
        )

    def _eval_sampler(self, dataset: Dataset) -> Sampler | None:
        """Under DDP, each evaluation example on exactly one rank.

        Lightning's default for val/test is a ``DistributedSampler``, which pads the split to a
        multiple of the number of processes by repeating examples: a 2-process val/loss then
        counts some examples twice and differs from one process's. Ranks may get one batch
        fewer instead (safe: evaluation runs no gradient sync). ``None`` in one process or
        with ``Trainer(use_distributed_sampler=False)``.
        """
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return None
        if torch.distributed.get_world_size() < 2 or len(dataset) == 0:
            return None
        trainer = getattr(self, "trainer", None)
        connector = getattr(trainer, "_accelerator_connector", None)
        if connector is not None and not connector.use_distributed_sampler:
            return None
        return UnrepeatedDistributedSampler(dataset, shuffle=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
