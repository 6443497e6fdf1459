"""The DataModules inside Lightning and Hydra: checkpointed vocabularies, _target_ building."""

import doctest
import importlib
import pkgutil

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

import seqmodels.data
from seqmodels.data import LanguageModelDataModule, Vocabulary


class _TinyLM(L.LightningModule):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, 8)
        self.out = torch.nn.Linear(8, vocab_size)
        self.seen_reset = []

    def training_step(self, batch, _):
        self.seen_reset.append(batch["reset"].clone())
        logits = self.out(self.embed(batch["inputs"]))  # (N, k, V)
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["targets"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_vocabulary_travels_in_the_lightning_checkpoint(tmp_path):
    dm = LanguageModelDataModule(level="word", batch_size=4, max_length=16)
    dm.setup()
    model = _TinyLM(dm.vocab_size)
    trainer = L.Trainer(
        max_steps=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(model, datamodule=dm)
    assert model.seen_reset[0].all() and len(model.seen_reset) == 3
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=False)
    saved = state["LanguageModelDataModule"]["vocab"]
    assert Vocabulary.from_state_dict(saved) == dm.vocab
    assert state["datamodule_hyper_parameters"]["level"] == "word"
    fresh = LanguageModelDataModule(level="char", batch_size=4, max_length=16)
    fresh.load_state_dict(state["LanguageModelDataModule"])
    fresh.setup()
    assert fresh.vocab == dm.vocab


def test_hydra_builds_datamodules_from_plain_values():
    cfg = {
        "_target_": "seqmodels.data.CopyMemoryDataModule",
        "delay": 5,
        "n_train": 8,
        "n_val": 4,
        "n_test": 4,
        "batch_size": 2,
        "seed": 1,
    }
    dm = instantiate(cfg)
    dm.setup()
    assert next(iter(dm.train_dataloader()))["inputs"].shape == (2, 25)


def test_worker_processes_give_the_same_batches():
    from seqmodels.data import AddingDataModule

    def first(workers):
        dm = AddingDataModule(
            length=10, n_train=16, n_val=4, n_test=4, batch_size=4, num_workers=workers
        )
        dm.setup()
        return next(iter(dm.train_dataloader()))["inputs"]

    assert torch.equal(first(0), first(1))


def _modules():
    for info in pkgutil.walk_packages(seqmodels.data.__path__, "seqmodels.data."):
        yield info.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# ------------------------------------------------------------ epoch-seeded shuffling
def _shuffling_datamodules():
    from seqmodels.data import (
        AddingDataModule,
        CopyMemoryDataModule,
        ForecastingDataModule,
        Seq2SeqDataModule,
        SequenceClassificationDataModule,
        SequenceTransformDataModule,
        TaggingDataModule,
    )

    return {
        "adding": lambda seed: AddingDataModule(
            length=8, n_train=40, n_val=8, n_test=8, batch_size=8, seed=seed
        ),
        "copy_memory": lambda seed: CopyMemoryDataModule(
            delay=5, n_train=40, n_val=8, n_test=8, batch_size=8, seed=seed
        ),
        "transform": lambda seed: SequenceTransformDataModule(
            n_train=40, n_val=8, n_test=8, batch_size=8, seed=seed
        ),
        "classification": lambda seed: SequenceClassificationDataModule(batch_size=64, seed=seed),
        "tagging": lambda seed: TaggingDataModule(
            batch_size=64, seed=seed, max_length=40, truncate=True
        ),
        "seq2seq": lambda seed: Seq2SeqDataModule(limit=200, batch_size=16, seed=seed),
        "forecasting": lambda seed: ForecastingDataModule(window=12, batch_size=16, seed=seed),
    }


def _epoch_iter(loader, epoch: int):
    """Iterate ``loader`` as Lightning does at the start of ``epoch`` (``set_epoch`` first)."""
    from lightning.fabric.utilities.data import _set_sampler_epoch

    _set_sampler_epoch(loader, epoch)
    return iter(loader)


def _epoch_order(loader, epoch: int) -> list:
    """Every batch of one epoch, as plain lists."""
    return [
        {k: v.tolist() for k, v in batch.items() if isinstance(v, torch.Tensor)}
        for batch in _epoch_iter(loader, epoch)
    ]


@pytest.mark.parametrize("name", sorted(_shuffling_datamodules()))
def test_training_shuffle_is_a_function_of_seed_and_epoch(name):
    make = _shuffling_datamodules()[name]
    if name in ("classification", "tagging", "seq2seq"):
        pytest.importorskip("names")
    dm = make(0)
    dm.setup()
    loader = dm.train_dataloader()
    epoch0, epoch1 = _epoch_order(loader, 0), _epoch_order(loader, 1)
    assert epoch0 != epoch1, "two epochs were served in the same order"
    # A fresh DataModule (a resumed run) that starts at epoch 1 serves epoch 1's order.
    fresh = make(0)
    fresh.setup()
    assert _epoch_order(fresh.train_dataloader(), 1) == epoch1
    assert _epoch_order(fresh.train_dataloader(), 0) == epoch0
    # Validation is never shuffled.
    val = dm.val_dataloader()
    assert _epoch_order(val, 0) == _epoch_order(val, 1)


def test_lightning_sets_the_shuffle_epoch(tmp_path):
    from seqmodels.data import AddingDataModule

    class Recorder(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.seen: dict[int, list] = {}

        def training_step(self, batch, _):
            self.seen.setdefault(self.current_epoch, []).append(batch["targets"].tolist())
            return self.layer(batch["inputs"][:, -1]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    def make():
        dm = AddingDataModule(length=6, n_train=32, n_val=8, n_test=8, batch_size=8, seed=1)
        dm.setup()
        return dm

    model = Recorder()
    trainer = L.Trainer(
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(model, datamodule=make())
    assert model.seen[0] != model.seen[1] and model.seen[1] != model.seen[2]
    for epoch in range(3):
        fresh = make().train_dataloader()
        assert [b["targets"].tolist() for b in _epoch_iter(fresh, epoch)] == model.seen[epoch]
