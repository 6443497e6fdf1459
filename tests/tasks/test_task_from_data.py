"""One route from data to model: the set-up data's description goes to the constructor."""

import json

from omegaconf import OmegaConf

from seqmodels.data import Vocabulary
from seqmodels.experiment.instantiate import config_info, data_info, instantiate_model
from seqmodels.tasks import LanguageModel


class TinyData:
    """A set-up DataModule as the route sees it: sizes and a vocabulary."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.vocab_size = len(vocab)
        self.pad_id = vocab.pad_id


def _run_config(model: dict, info: dict):
    cfg = OmegaConf.create({"model": model})
    cfg.data_info = config_info(info)  # what train() writes: what ${data_info.*} reads
    return cfg


def _lm_config(**extra) -> dict:
    return {
        "_target_": "seqmodels.tasks.LanguageModel",
        "vocab_size": "${data_info.vocab_size}",
        "embedding_dim": 4,
        "encoder": {
            "_target_": "seqmodels.ElmanRNN",
            "input_size": 4,
            "hidden_size": 8,
            "batch_first": True,
        },
        **extra,
    }


def test_data_info_is_plain_data_with_the_vocabulary():
    vocab = Vocabulary.build(["a b ${x} b"], level="whitespace")
    info = data_info(TinyData(vocab))
    assert info["vocab"] == vocab.state_dict() and info["vocab_size"] == len(vocab)
    assert "vocab" not in config_info(info) and config_info(info)["vocab_size"] == len(vocab)


def test_the_model_gets_sizes_and_vocabulary_and_stores_them():
    # A token that OmegaConf would read as an interpolation: the vocabulary never enters the
    # config, so it reaches the model unchanged.
    vocab = Vocabulary.build(["a b ${x} b"], level="whitespace")
    info = data_info(TinyData(vocab))
    cfg = _run_config(_lm_config(vocab=None), info)
    model = instantiate_model(cfg.model, info)
    assert isinstance(model, LanguageModel)
    assert model.vocab_size == len(vocab) and model.vocab == vocab.state_dict()
    assert model.hparams["vocab"] == vocab.state_dict()
    assert model.decode(vocab.encode("${x} a")) == "${x} a"
    # Plain data (no pickled object): a JSON round trip gives it back unchanged.
    assert json.loads(json.dumps(model.hparams["vocab"])) == vocab.state_dict()


def test_the_config_decides_whether_the_model_takes_the_vocabulary():
    vocab = Vocabulary.build(["a b c"], level="char")
    info = data_info(TinyData(vocab))
    # No `vocab` key: the model is built without one (no signature is inspected).
    assert instantiate_model(_run_config(_lm_config(), info).model, info).vocab is None
    # A vocabulary the config sets itself wins over the data's.
    own = {"tokens": [f"t{i}" for i in range(len(vocab))], "level": "word"}
    built = instantiate_model(_run_config(_lm_config(vocab=own), info).model, info)
    assert built.vocab == own


def test_language_model_no_longer_reaches_into_the_trainer_for_data():
    assert "setup" not in vars(LanguageModel)
