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
