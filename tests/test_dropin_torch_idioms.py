"""torch idioms that need a module's own parameter work on the drop-ins' flat names.

Each is checked against ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` under the same idiom, weights
copied: parametrizations (``weight_norm``, ``spectral_norm``, a user's), with the same
values, parameter names, state-dict keys and gradients (on ``.original`` too); and
``torch.export.export``, whose program computes what the module does (``torch.compile``:
``tests/test_traced_ops.py``).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from seqmodels import GRU, LSTM, ElmanRNN

BACKENDS = ["bptt", "autograd", "torch", "auto"]
DROP_INS = {"LSTM": LSTM, "GRU": GRU, "RNN": ElmanRNN}


class Symmetric(nn.Module):
    """A user parametrization: the weight's rows mirrored and averaged."""

    def forward(self, weight):
        return (weight + weight.flip(0)) * 0.5


PARAMETRIZATIONS = {
    "weight_norm": lambda m, name: parametrizations.weight_norm(m, name),
    "spectral_norm": lambda m, name: parametrizations.spectral_norm(m, name),
    "user": lambda m, name: parametrize.register_parametrization(m, name, Symmetric()),
}


def pair(kind: str, backend: str, **options):
    torch.manual_seed(0)
    reference = getattr(nn, kind)(3, 4, **options).double()
    return reference, DROP_INS[kind].from_torch(reference, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", list(PARAMETRIZATIONS))
@pytest.mark.parametrize("kind", list(DROP_INS))
def test_parametrization_matches_torch(kind, how, backend):
    reference, ours = pair(kind, backend, num_layers=2, bidirectional=True)
    for module in (reference, ours):
        torch.manual_seed(1)  # spectral_norm draws its power-iteration vectors
        PARAMETRIZATIONS[how](module, "weight_hh_l0")
        PARAMETRIZATIONS[how](module, "weight_ih_l1_reverse")
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in reference.named_parameters()]
    reference.eval(), ours.eval()  # spectral_norm: no power iteration, the same sigma
    x = torch.randn(5, 2, 3, dtype=torch.double)
    expected, got = reference(x)[0], ours(x)[0]
    torch.testing.assert_close(got, expected)
    weights = torch.randn_like(expected)
    expected_grads = torch.autograd.grad((expected * weights).sum(), list(reference.parameters()))
    grads = torch.autograd.grad((got * weights).sum(), list(ours.parameters()))
    names = [n for n, _ in ours.named_parameters()]
    assert any(".original" in n for n in names), "the gradient reaches the original"
    for name, g, e in zip(names, grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_parametrization_is_removed_as_on_torch(backend):
    reference, ours = pair("LSTM", backend)
    for module in (reference, ours):
        parametrize.register_parametrization(module, "weight_hh_l0", Symmetric())
        parametrize.remove_parametrizations(module, "weight_hh_l0")  # keeps the value
    assert list(ours.state_dict()) == list(reference.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.double)
    torch.testing.assert_close(ours(x)[0], reference(x)[0])
    assert ours.weight_hh_l0 is ours.cell(0).weight_hh, "the cell computes with it again"


def test_state_dicts_load_both_ways_under_a_parametrization():
    reference, ours = pair("GRU", "bptt")
    for module in (reference, ours):
        parametrize.register_parametrization(module, "weight_hh_l0", Symmetric())
    torch.nn.init.normal_(reference.parametrizations.weight_hh_l0.original)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.double)
    torch.testing.assert_close(ours(x)[0], reference(x)[0])
    reference.load_state_dict(ours.state_dict())


def test_each_weight_is_one_object_under_both_names():
    lstm = LSTM(3, 4, bidirectional=True)
    assert lstm.weight_hh_l0_reverse is lstm.cell(0, 1).weight_hh
    assert len(list(lstm.parameters())) == 8, "the cells' duplicates are not counted twice"
    assert [n for n, _ in lstm.named_parameters(recurse=False)][:2] == [
        "weight_ih_l0",
        "weight_hh_l0",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(DROP_INS))
def test_torch_export_computes_what_the_module_does(kind, backend):
    _, ours = pair(kind, backend, num_layers=2)
    ours = ours.float().eval()
    x = torch.randn(6, 2, 3)
    program = torch.export.export(ours, (x,))
    got, expected = program.module()(x), ours(x)
    torch.testing.assert_close(got[0], expected[0])
    assert {n for n, _ in ours.named_parameters()} <= set(program.state_dict)
