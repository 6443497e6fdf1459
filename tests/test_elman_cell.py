"""ElmanCell computes what torch.nn.RNNCell computes, values and gradients."""

import pytest
import torch

from seqmodels import ElmanCell


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_parity_with_rnn_cell(nonlinearity, bias, dtype):
    ref = torch.nn.RNNCell(4, 6, bias=bias, nonlinearity=nonlinearity, dtype=dtype)
    cell = ElmanCell(4, 6, bias=bias, nonlinearity=nonlinearity, dtype=dtype)
    cell.load_state_dict(ref.state_dict())
    assert [n for n, _ in cell.named_parameters()] == [n for n, _ in ref.named_parameters()]
    x = torch.randn(3, 4, dtype=dtype, requires_grad=True)
    h = torch.randn(3, 6, dtype=dtype, requires_grad=True)
    ref_h = ref(x, h)
    out, new_h = cell(x, h)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(out, ref_h, **tol)
    assert new_h is out
    w = torch.randn_like(ref_h)
    ref_grads = torch.autograd.grad((ref_h * w).sum(), [x, h, *ref.parameters()])
    grads = torch.autograd.grad((out * w).sum(), [x, h, *cell.parameters()])
    for got, expected in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, expected, **tol)


def test_default_state_is_zeros():
    ref = torch.nn.RNNCell(4, 6)
    cell = ElmanCell(4, 6)
    cell.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4)
    torch.testing.assert_close(cell(x)[0], ref(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_size": 0, "hidden_size": 4}, "input_size must be a positive integer, got 0"),
        ({"input_size": 3, "hidden_size": -1}, "hidden_size must be a positive integer, got -1"),
        (
            {"input_size": 3, "hidden_size": 4, "nonlinearity": "sigmoid"},
            "expected one of tanh, relu",
        ),
        ({"input_size": 3, "hidden_size": 4, "init": "he"}, "expected one of default, xavier"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ElmanCell(**kwargs)


def test_wrong_feature_size():
    with pytest.raises(ValueError, match=r"expected input with 4 features, got shape \(2, 5\)"):
        ElmanCell(4, 6)(torch.randn(2, 5))
