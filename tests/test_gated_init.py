"""The opt-in ``init="forget_bias"`` of the LSTM: exactly the forget gate's bias slice changes."""

from __future__ import annotations

import pytest
import torch

from seqmodels import GRU, LSTM, GRUCell, LSTMCell
from seqmodels.cells.gated import FORGET_BIAS


def test_default_init_is_still_nn_lstm():
    """The drop-in's default draws the same numbers as nn.LSTM (parity tests rely on it)."""
    torch.manual_seed(3)
    ours = LSTM(5, 7, num_layers=2)
    torch.manual_seed(3)
    reference = torch.nn.LSTM(5, 7, num_layers=2)
    assert ours.init == "default"
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_forget_bias_sets_exactly_the_forget_gate_slice(bidirectional):
    hidden = 6
    torch.manual_seed(0)
    default = LSTM(4, hidden, num_layers=2, bidirectional=bidirectional)
    torch.manual_seed(0)
    forget = LSTM(4, hidden, num_layers=2, bidirectional=bidirectional, init="forget_bias")
    f = slice(hidden, 2 * hidden)  # torch's gate order i, f, g, o
    rest = torch.ones(4 * hidden, dtype=torch.bool)
    rest[f] = False
    reference = default.state_dict()
    for name, tensor in forget.state_dict().items():
        if name.startswith("weight"):
            torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0)
            continue
        # every other gate's bias is default's draw, bit for bit
        torch.testing.assert_close(tensor[rest], reference[name][rest], rtol=0, atol=0)
        expected = FORGET_BIAS if name.startswith("bias_ih") else 0.0
        assert torch.equal(tensor[f], torch.full((hidden,), expected))
    # the forget gate's total bias b_ih + b_hh is 1 in every layer and direction
    for name, tensor in forget.state_dict().items():
        if name.startswith("bias_ih"):
            total = tensor + forget.state_dict()[name.replace("bias_ih", "bias_hh")]
            assert torch.equal(total[f], torch.ones(hidden))
    assert FORGET_BIAS == 1.0
    assert "init='forget_bias'" in repr(forget)


def test_forget_bias_survives_reset_parameters_and_loads_into_nn_lstm():
    lstm = LSTM(3, 4, init="forget_bias")
    with torch.no_grad():
        lstm.bias_ih_l0.zero_()
    lstm.reset_parameters()
    assert torch.equal(lstm.bias_ih_l0[4:8], torch.ones(4))
    reference = torch.nn.LSTM(3, 4)
    reference.load_state_dict(lstm.state_dict())  # same names and shapes as ever
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(lstm(x)[0], reference(x)[0])


def test_forget_bias_on_the_cell():
    torch.manual_seed(1)
    cell = LSTMCell(3, 5, init="forget_bias")
    torch.manual_seed(1)
    default = LSTMCell(3, 5)
    assert torch.equal(cell.bias_ih[5:10], torch.ones(5))
    assert torch.equal(cell.bias_hh[5:10], torch.zeros(5))
    torch.testing.assert_close(cell.bias_ih[:5], default.bias_ih[:5], rtol=0, atol=0)
    torch.testing.assert_close(cell.bias_hh[10:], default.bias_hh[10:], rtol=0, atol=0)


@pytest.mark.parametrize("module", [GRU, GRUCell])
def test_gru_refuses_forget_bias_with_a_clear_error(module):
    with pytest.raises(ValueError, match="a GRU has no forget gate"):
        module(3, 4, init="forget_bias")


@pytest.mark.parametrize("module", [LSTM, LSTMCell])
def test_forget_bias_needs_biases(module):
    with pytest.raises(ValueError, match="bias=False"):
        module(3, 4, bias=False, init="forget_bias")


@pytest.mark.parametrize("init", ["forget-bias", "Forget_bias", "unit_forget", ""])
def test_bad_init_values_name_the_choices(init):
    with pytest.raises(ValueError, match="expected one of default, orthogonal, forget_bias"):
        LSTM(3, 4, init=init)
