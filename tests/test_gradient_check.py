"""The user-facing gradient check: small errors for a right backward, large for a wrong one."""

import torch

from seqmodels import ElmanCell, ElmanRNN, Stacked, gradient_check
from seqmodels.kernels.elman import ElmanBPTT


class WrongBackward(ElmanBPTT):
    """Test-only: the right forward, a backward that scales dW_hh by 1.1."""

    @staticmethod
    def backward(ctx, grad_out, grad_h_n):
        grads = list(ElmanBPTT.backward(ctx, grad_out, grad_h_n))
        if grads[3] is not None:
            grads[3] = grads[3] * 1.1
        return tuple(grads)


class BrokenCell(ElmanCell):
    """An Elman cell whose hand-written BPTT is the broken one above."""

    def fused_sequence(self, x, state, lengths, reverse):
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return WrongBackward.apply(x, state, *weights, self.nonlinearity, lengths, reverse)


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
