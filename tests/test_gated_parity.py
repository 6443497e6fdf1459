"""LSTM and GRU against ``nn.LSTM`` / ``nn.GRU`` with copied weights, on both backends.

Outputs, final states and every gradient (input, initial state, each parameter), over
padded (``lengths=``), packed (unsorted), bidirectional and stacked configurations, in
float64 so any difference is a bug, not rounding.
"""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqmodels import GRU, LSTM, GRUCell, LSTMCell, Recurrent

MODULES = {"lstm": LSTM, "gru": GRU}
LENGTHS = [7, 3, 5, 1]


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("backend", ["bptt", "autograd", "torch", "auto"])
@pytest.mark.parametrize("kind", list(MODULES))
@pytest.mark.parametrize("layout", ["full", "lengths", "packed"])
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"num_layers": 2},
        {"bidirectional": True},
        {"num_layers": 2, "bidirectional": True, "batch_first": True},
        {"bias": False},
    ],
    ids=["plain", "deep", "bi", "deep-bi-bf", "nobias"],
)
def test_matches_torch(kind, backend, layout, config):
    torch.manual_seed(0)
    ref = MODULES[kind].torch_class(3, 5, **config).double()
    ours = MODULES[kind].from_torch(ref, backend=backend)
    batch_first = config.get("batch_first", False)
    x = torch.randn(7, 4, 3, dtype=torch.double, requires_grad=True)
    slots = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    h0 = torch.randn(slots, 4, 5, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(slots, 4, 5, dtype=torch.double, requires_grad=True)
    state = (h0, c0) if kind == "lstm" else h0
    inp = x.transpose(0, 1) if batch_first else x

    def pack():  # one packing per module: each backward frees its own graph
        return pack_padded_sequence(inp, LENGTHS, batch_first=batch_first, enforce_sorted=False)

    if layout == "packed":
        ref_out, ref_state = ref(pack(), state)
        out, our_state = ours(pack(), state)
        ref_out, out = ref_out.data, out.data
    elif layout == "lengths":
        ref_out, ref_state = ref(pack(), state)
        ref_out = pad_packed_sequence(ref_out, batch_first=batch_first, total_length=7)[0]
        out, our_state = ours(inp, state, lengths=LENGTHS)
    else:
        ref_out, ref_state = ref(inp, state)
        out, our_state = ours(inp, state)
    torch.testing.assert_close(out, ref_out)
    for a, b in zip(as_tuple(our_state), as_tuple(ref_state), strict=True):
        torch.testing.assert_close(a, b)
    weights = torch.randn_like(out)

    def loss(o, s):
        return (o * weights).sum() + sum((t.sin()).sum() for t in as_tuple(s))

    leaves = [x, h0] + ([c0] if kind == "lstm" else [])
    ref_grads = torch.autograd.grad(loss(ref_out, ref_state), leaves + list(ref.parameters()))
    our_grads = torch.autograd.grad(loss(out, our_state), leaves + list(ours.parameters()))
    names = ["x", "h0", "c0"][: len(leaves)] + [n for n, _ in ours.named_parameters()]
    for name, a, b in zip(names, our_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize(
    "cell, reference", [(LSTMCell, torch.nn.LSTMCell), (GRUCell, torch.nn.GRUCell)]
)
def test_cells_match_torch_cells_and_copy_weights_both_ways(cell, reference):
    ours, ref = cell(4, 6), reference(4, 6)
    ref.load_state_dict(ours.state_dict())
    ours.load_state_dict(ref.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    x, h = torch.randn(3, 4), torch.randn(3, 6)
    if cell is LSTMCell:
        c = torch.randn(3, 6)
        _, (h1, c1) = ours(x, (h, c))
        torch.testing.assert_close((h1, c1), ref(x, (h, c)))
    else:
        torch.testing.assert_close(ours(x, h)[0], ref(x, h))


@pytest.mark.parametrize("kind", list(MODULES))
def test_state_dict_round_trip_and_names(kind):
    ours = MODULES[kind](3, 5, num_layers=2, bidirectional=True)
    ref = ours.to_torch()
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    back = MODULES[kind].from_torch(ref)
    for a, b in zip(back.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert ours.weight_hh_l1_reverse is ours.cell(1, 1).weight_hh


def test_lstm_proj_size_builds_projections_and_is_checked_as_torch():
    """Projections themselves: tests/test_lstm_proj.py."""
    assert LSTM(3, 5, proj_size=2).weight_hr_l0.shape == (2, 5)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        LSTM(3, 5, proj_size=5)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        GRU(3, 5, proj_size=0)


def test_a_generic_stack_of_gated_cells_gets_bptt():
    layer = Recurrent(LSTMCell(3, 4), backend="bptt")
    x = torch.randn(6, 2, 3)
    out, (h, c) = layer(x, lengths=[6, 2])
    auto_out, (auto_h, auto_c) = Recurrent(layer.cell)(x, lengths=[6, 2])
    torch.testing.assert_close(out, auto_out)
    torch.testing.assert_close((h, c), (auto_h, auto_c))
