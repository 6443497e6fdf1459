"""Generic layers: a state of the wrong size names the expected shape; an empty batch works.

The generic layers (``Stacked``, ``Bidirectional``, ``Recurrent`` over any cell) check a
caller's state against the layer's own initial state, so the error says what was expected
instead of surfacing as a matmul error deep inside a cell.
"""

import pytest
import torch

from seqmodels import Bidirectional, ElmanCell, LSTMCell, Recurrent, Stacked
from seqmodels.core.errors import ShapeError


def _layers():
    """(name, layer) pairs: generic layers over single- and tuple-state cells."""
    return [
        ("stacked-elman", Stacked.from_cell(lambda i: ElmanCell(i, 4), 3, 2)),
        ("bidirectional-elman", Bidirectional(ElmanCell(3, 4))),
        (
            "stacked-bidirectional-elman",
            Stacked.from_cell(lambda i: ElmanCell(i, 4), 3, 2, bidirectional=True),
        ),
        ("stacked-lstm", Stacked.from_cell(lambda i: LSTMCell(i, 4), 3, 2)),
        ("bidirectional-lstm", Bidirectional(LSTMCell(3, 4))),
    ]


LAYERS = _layers()


def _wrong_hidden(state):
    """The same state with a hidden size of 5 instead of 4."""
    if isinstance(state, tuple):
        return tuple(_wrong_hidden(s) for s in state)
    return torch.zeros(*state.shape[:-1], 5)


@pytest.mark.parametrize(("name", "layer"), LAYERS, ids=[n for n, _ in LAYERS])
def test_wrong_hidden_size_names_the_expected_state_shape(name, layer):
    x = torch.randn(6, 2, 3)
    expected = layer.initial_state(2, like=x)
    shapes = [s.shape for s in (expected if isinstance(expected, tuple) else (expected,))]
    slots = shapes[0][0]
    # torch's wording: "hidden" for one state tensor, "hidden[0]" for the first of (h, c)
    which = r"hidden\[0\]" if isinstance(expected, tuple) else "hidden"
    with pytest.raises(
        ShapeError, match=rf"Expected {which} size \({slots}, 2, 4\), got \[{slots}, 2, 5\]"
    ):
        layer(x, _wrong_hidden(expected))
    # the right state runs
    output, final = layer(x, expected)
    assert output.shape == (6, 2, layer.output_size)


def test_tuple_state_cell_with_one_wrong_part_is_named():
    """The wrong part is named as torch names it: hidden[1] is c_0."""
    layer = Stacked.from_cell(lambda i: LSTMCell(i, 4), 3, 2)
    h = torch.zeros(2, 2, 4)
    with pytest.raises(ShapeError, match=r"Expected hidden\[1\] size \(2, 2, 4\), got \[2, 2, 6\]"):
        layer(torch.randn(5, 2, 3), (h, torch.zeros(2, 2, 6)))
    with pytest.raises(TypeError, match="Expected the state to be a tuple of 2 Tensors"):
        layer(torch.randn(5, 2, 3), h)


def test_wrong_number_of_layers_in_the_state_is_named():
    layer = Stacked.from_cell(lambda i: ElmanCell(i, 4), 3, 2)
    with pytest.raises(ShapeError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
        layer(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))


@pytest.mark.parametrize(("name", "layer"), LAYERS, ids=[n for n, _ in LAYERS])
@pytest.mark.parametrize("lengths", [None, []])
def test_empty_batch_returns_empty_outputs(name, layer, lengths):
    x = torch.randn(4, 0, 3, requires_grad=True)
    if lengths is not None:
        lengths = torch.tensor(lengths, dtype=torch.long)
    output, final = layer(x, lengths=lengths)
    assert output.shape == (4, 0, layer.output_size)
    expected = layer.initial_state(0, like=x)
    for got, want in zip(
        final if isinstance(final, tuple) else (final,),
        expected if isinstance(expected, tuple) else (expected,),
        strict=True,
    ):
        assert got.shape == want.shape and got.shape[1] == 0
    output.sum().backward()  # and the backward pass runs too
    assert x.grad.shape == x.shape


def test_empty_batch_with_a_plain_list_of_lengths():
    layer = Recurrent(ElmanCell(3, 4))
    output, h_n = layer(torch.randn(4, 0, 3), lengths=[])
    assert output.shape == (4, 0, 4) and h_n.shape == (1, 0, 4)


def test_lstm_state_on_another_device_names_both_devices():
    from seqmodels import LSTM

    lstm = LSTM(3, 4)
    h0 = torch.zeros(1, 2, 4, device="meta")  # a device with no autocast: checked first
    with pytest.raises(RuntimeError, match="found hidden tensor at meta and input and param"):
        lstm(torch.randn(5, 2, 3), (h0, torch.zeros(1, 2, 4)))


def test_lstm_given_a_tensor_for_its_state_raises_runtime_error_as_torch():
    from seqmodels import LSTM

    with pytest.raises(RuntimeError, match="Expected the state to be a tuple of 2 Tensors"):
        LSTM(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
