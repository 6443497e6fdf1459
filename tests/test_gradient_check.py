"""The user-facing gradient check: small errors for a right backward, large for a wrong one."""

import pytest
import torch
from torch import nn

from seqmodels import ElmanCell, ElmanRNN, Stacked, gradient_check
from seqmodels.gradcheck import DEFAULT_EPS, scaled_error
from seqmodels.kernels.elman import ElmanBPTT


class WrongBackward(ElmanBPTT):
    """Test-only: the right forward, a backward that scales dW_hh by 1.1."""

    @staticmethod
    def backward(ctx, grad_out, grad_h_n, *buffers):
        grads = list(ElmanBPTT.backward(ctx, grad_out, grad_h_n, *buffers))
        if grads[3] is not None:
            grads[3] = grads[3] * 1.1
        return tuple(grads)


class BrokenCell(ElmanCell):
    """An Elman cell whose hand-written BPTT is the broken one above."""

    def fused_sequence(self, x, state, lengths, reverse):
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return WrongBackward.apply(x, state, *weights, self, lengths, reverse)[:2]


def BrokenElmanRNN(*args, **kwargs):  # noqa: N802 (reads like the class it stands for)
    rnn = ElmanRNN(*args, **kwargs)
    rnn.cell(0).__class__ = BrokenCell
    return rnn


def test_correct_modules_report_small_errors():
    x = torch.randn(6, 2, 3)
    for module in (
        ElmanRNN(3, 4, 2, backend="bptt"),
        ElmanRNN(3, 4, bidirectional=True, backend="autograd"),
        Stacked.from_cell(lambda i: ElmanCell(i, 4), 3, 2),
    ):
        report = gradient_check(module, x, lengths=[6, 4])
        assert report.max_error < 1e-6, str(report)
        assert "input[0]" in report.errors and report.checked["input[0]"] > 0


def test_wrong_backward_is_caught_and_named():
    report = gradient_check(BrokenElmanRNN(3, 4, backend="bptt"), torch.randn(6, 2, 3))
    assert report.errors["weight_hh_l0"] > 1e-2
    assert report.errors["weight_ih_l0"] < 1e-6  # only the broken gradient is flagged
    assert not report.passed()
    assert "weight_hh_l0" in str(report)


def test_original_module_is_untouched():
    rnn = ElmanRNN(3, 4)
    before = {k: v.clone() for k, v in rnn.state_dict().items()}
    gradient_check(rnn, torch.randn(4, 1, 3), max_entries=5)
    assert rnn.weight_ih_l0.dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in rnn.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("seed", range(3))
def test_torch_gated_rnns_pass_at_the_defaults(cls, seed):
    """nn.LSTM/nn.GRU are correct: every entry, default eps and tolerance, several seeds.

    Under the old default (eps=1e-6, plain relative error) 5 of these 6 failed (errors of
    2e-5 to 1e-4): the difference quotient was rounding noise for entries with small
    gradients."""
    torch.manual_seed(seed)
    module = cls(4, 16, 2)
    report = gradient_check(module, torch.randn(12, 3, 4), max_entries=None, seed=seed)
    assert report.passed(), str(report)
    assert report.max_error < 1e-6, str(report)  # two orders below the tolerance
    assert report.eps == DEFAULT_EPS and 0 < report.noise < 1e-8


def test_scaled_error_is_relative_above_the_noise_and_absolute_near_it():
    assert scaled_error(2.0, 2.0, noise=1e-10) == 0.0
    assert abs(scaled_error(1.0, 1.1, noise=1e-10) - 0.1 / 2.1) < 1e-12
    # an entry of about the noise level, off by the noise: not a failure
    assert scaled_error(3e-10, 2e-10, noise=1e-10) <= 1e-6
    # an entry of 1e-6 that backward gets 10% wrong: still a failure
    assert scaled_error(1.1e-6, 1e-6, noise=1e-10) > 1e-5


def test_a_wrong_gradient_in_a_gated_cell_is_caught():
    """A gated cell whose backward drops 5% of one gradient is flagged, and only there."""

    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad * 0.95

    class BrokenGRU(nn.GRU):
        def forward(self, x):
            weight = Scale.apply(self.weight_hh_l0)
            return torch._VF.gru(
                x,
                torch.zeros(1, x.shape[1], self.hidden_size, dtype=x.dtype),
                [self.weight_ih_l0, weight, self.bias_ih_l0, self.bias_hh_l0],
                True,
                1,
                0.0,
                False,
                False,
                False,
            )

    torch.manual_seed(0)
    report = gradient_check(BrokenGRU(3, 5), torch.randn(6, 2, 3))
    assert report.errors["weight_hh_l0"] > 1e-2
    assert report.errors["weight_ih_l0"] < 1e-6
    assert not report.passed()
