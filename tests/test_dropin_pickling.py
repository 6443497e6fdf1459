"""A whole model holding a drop-in saves with ``torch.save(model)`` and loads with
``torch.load(f, weights_only=True)`` under seqmodels' classes alone, as pytorch/examples'
word_language_model saves and loads ``nn.LSTM``: nothing else of seqmodels (no hook, no
function) is pickled."""

import importlib
import inspect
import io
import pkgutil

import pytest
import torch
from torch import nn

import seqmodels
from seqmodels import GRU, LSTM, ElmanRNN


def seqmodels_classes() -> list[type]:
    """Every class defined in seqmodels' core, cells, kernels and layers."""
    classes = set()
    for package in ("core", "cells", "kernels", "layers"):
        root = importlib.import_module(f"seqmodels.{package}")
        names = [root.__name__] + [
            info.name for info in pkgutil.walk_packages(root.__path__, root.__name__ + ".")
        ]
        for name in names:
            module = importlib.import_module(name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if obj.__module__.startswith("seqmodels."):
                    classes.add(obj)
    return sorted(classes, key=lambda c: c.__qualname__)


class WordModel(nn.Module):
    """word_language_model's RNNModel, reduced: embedding, recurrence, decoder."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.encoder = nn.Embedding(11, 3)
        self.rnn = rnn
        self.decoder = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), 11)

    def forward(self, tokens):
        output, _ = self.rnn(self.encoder(tokens))
        return self.decoder(output)


@pytest.mark.parametrize("backend", ["auto", "bptt", "autograd", "torch"])
@pytest.mark.parametrize("make", [LSTM, GRU, ElmanRNN], ids=["lstm", "gru", "elman"])
def test_whole_model_loads_with_only_seqmodels_classes_allowlisted(make, backend):
    model = WordModel(make(3, 5, num_layers=2, bidirectional=True, backend=backend)).eval()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    allowed = [WordModel, nn.Embedding, nn.Linear, *seqmodels_classes()]
    with torch.serialization.safe_globals(allowed):
        loaded = torch.load(buffer, weights_only=True)
    tokens = torch.randint(0, 11, (6, 2))
    torch.testing.assert_close(loaded(tokens), model(tokens), rtol=0, atol=0)
    assert loaded.rnn.backend == backend
    assert list(loaded.rnn.state_dict()) == list(model.rnn.state_dict())


def test_nn_lstm_needs_only_its_class_as_the_control():
    model = WordModel(nn.LSTM(3, 5, num_layers=2, bidirectional=True)).eval()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    with torch.serialization.safe_globals([WordModel, nn.Embedding, nn.Linear, nn.LSTM]):
        torch.load(buffer, weights_only=True)


def test_state_dicts_still_use_torch_names_inside_a_parent():
    model = WordModel(LSTM(3, 5, bidirectional=True))
    keys = [k for k in model.state_dict() if k.startswith("rnn.")]
    assert keys[:4] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"]
    reference = WordModel(nn.LSTM(3, 5, bidirectional=True))
    reference.load_state_dict(model.state_dict())
    model.load_state_dict(reference.state_dict())
    assert seqmodels.LSTM is LSTM
