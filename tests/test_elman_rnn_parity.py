"""ElmanRNN(backend="autograd") computes what torch.nn.RNN computes: outputs, h_n, all grads."""

import pytest
import torch
from rnn_parity import MODES, run_parity


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_parity_with_nn_rnn(num_layers, bidirectional, nonlinearity, bias, mode, dtype):
    run_parity(mode, num_layers, bidirectional, nonlinearity, bias, dtype, backend="autograd")
