"""ElmanRNN as a drop-in for torch.nn.RNN: names, init, conversion, backends, errors."""

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from seqmodels import ElmanRNN
from seqmodels.diagnostics.precision import exact_float32


def test_parameter_names_and_shapes_match_nn_rnn():
    kwargs = dict(num_layers=3, bidirectional=True)
    ours, ref = ElmanRNN(7, 5, **kwargs), torch.nn.RNN(7, 5, **kwargs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, p.shape) for n, p in ref.named_parameters()
    ]
    assert [[p.shape for p in group] for group in ours.all_weights] == [
        [p.shape for p in group] for group in ref.all_weights
    ]


def test_state_dict_loads_both_ways():
    ref = torch.nn.RNN(3, 4, num_layers=2, nonlinearity="relu", bias=False)
    ours = ElmanRNN(3, 4, num_layers=2, nonlinearity="relu", bias=False)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    other = ElmanRNN(3, 4, num_layers=2, nonlinearity="relu", bias=False)
    ref.load_state_dict(other.state_dict())
    torch.testing.assert_close(other(x)[0], ref(x)[0])


def test_from_torch_and_to_torch_round_trip():
    ref = torch.nn.RNN(3, 4, 2, "relu", True, True, 0.25, True, dtype=torch.float64)
    ours = ElmanRNN.from_torch(ref, backend="bptt")
    assert (
        ours.num_layers,
        ours.nonlinearity,
        ours.batch_first,
        ours.dropout,
        ours.bidirectional,
    ) == (
        2,
        "relu",
        True,
        0.25,
        True,
    )
    assert ours.backend == "bptt" and ours.weight_ih_l0.dtype == torch.float64
    back = ours.to_torch()
    assert isinstance(back, torch.nn.RNN)
    for (n1, p1), (n2, p2) in zip(back.named_parameters(), ref.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2) and p1.data_ptr() != p2.data_ptr()
    with pytest.raises(ValueError, match="expects a torch.nn.RNN, got LSTM"):
        ElmanRNN.from_torch(torch.nn.LSTM(3, 4))


def test_default_init_matches_nn_rnn_distribution():
    rnn = ElmanRNN(50, 400)
    bound = 1 / math.sqrt(400)
    for p in rnn.parameters():
        assert p.abs().max() <= bound
        assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # U(-b, b)


def test_identity_init_is_irnn():
    rnn = ElmanRNN(3, 8, num_layers=2, nonlinearity="relu", init="identity")
    assert torch.equal(rnn.weight_hh_l1, torch.eye(8))
    assert torch.all(rnn.bias_ih_l0 == 0) and torch.all(rnn.bias_hh_l1 == 0)
    # with zero input an IRNN keeps a positive state exactly
    h0 = torch.rand(2, 1, 8)
    _, h_n = rnn(torch.zeros(10, 1, 3), h0)
    torch.testing.assert_close(h_n[0], h0[0])


@pytest.mark.parametrize("scheme", ["xavier", "kaiming", "orthogonal"])
def test_other_init_schemes(scheme):
    rnn = ElmanRNN(16, 32, init=scheme)
    assert torch.all(rnn.bias_ih_l0 == 0)
    if scheme == "orthogonal":
        w = rnn.weight_hh_l0
        torch.testing.assert_close(w @ w.T, torch.eye(32), atol=1e-5, rtol=0)
    assert rnn.weight_hh_l0.std() > 0


def test_backend_can_be_switched_after_loading():
    rnn = ElmanRNN(3, 4, num_layers=2, bidirectional=True)
    assert rnn.backend == "auto", "the fastest correct path per call is the default"
    x = torch.randn(6, 2, 3)
    assert rnn.resolved_backend(x) == "bptt", "on the CPU the hand-written BPTT is faster"
    out_a, h_a = rnn(x)
    rnn.backend = "autograd"
    out_b, h_b = rnn(x)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(h_a, h_b)
    with pytest.raises(
        ValueError, match="unknown backend 'cudnn'; expected one of auto, bptt, autograd, torch"
    ):
        rnn.backend = "cudnn"


def test_dropout_is_between_layers_only():
    rnn = ElmanRNN(3, 16, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    rnn.train()
    assert not torch.allclose(rnn(x)[0], rnn(x)[0])
    rnn.eval()
    torch.testing.assert_close(rnn(x)[0], rnn(x)[0])
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        ElmanRNN(3, 4, dropout=0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_size": 0}, "hidden_size must be a positive integer, got 0"),
        ({"input_size": -3}, "input_size must be a positive integer, got -3"),
        ({"num_layers": 0}, "num_layers must be a positive integer, got 0"),
        ({"dropout": 1.5}, r"dropout must be a number in \[0, 1\], got 1.5"),
        ({"nonlinearity": "gelu"}, "unknown nonlinearity 'gelu'; expected one of tanh, relu"),
        (
            {"backend": "cuda"},
            "unknown backend 'cuda'; expected one of auto, bptt, autograd, torch",
        ),
        ({"init": "zeros"}, "unknown init 'zeros'; expected one of default, xavier, kaiming"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        ElmanRNN(**args)


@pytest.mark.parametrize("backend", ["autograd", "bptt"])
class TestBadInput:
    def rnn(self, backend, **kwargs):
        return ElmanRNN(3, 4, num_layers=2, backend=backend, **kwargs)

    def test_wrong_feature_size(self, backend):
        with pytest.raises(ValueError, match="Expected 3, got 5"):
            self.rnn(backend)(torch.randn(6, 2, 5))

    def test_wrong_rank(self, backend):
        with pytest.raises(
            ValueError,
            match=r"input must be 3-D \(T, N, F\) or unbatched 2-D \(T, F\), got shape \(3,\)",
        ):
            self.rnn(backend)(torch.randn(3))

    def test_wrong_h0_shape(self, backend):
        with pytest.raises(ValueError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
            self.rnn(backend)(torch.randn(6, 2, 3), torch.zeros(1, 2, 4))

    def test_wrong_unbatched_h0_shape(self, backend):
        with pytest.raises(ValueError, match=r"hx should also be 2-D but got 3-D tensor"):
            self.rnn(backend)(torch.randn(6, 3), torch.zeros(2, 1, 4))

    def test_zero_length(self, backend):
        with pytest.raises(ValueError, match="lengths must be at least 1, got 0 for sequence 1"):
            self.rnn(backend)(torch.randn(6, 2, 3), lengths=[6, 0])

    def test_length_longer_than_sequence(self, backend):
        with pytest.raises(
            ValueError, match="must not exceed the sequence length 6, got 9 for sequence 0"
        ):
            self.rnn(backend)(torch.randn(6, 2, 3), lengths=[9, 2])

    def test_wrong_number_of_lengths(self, backend):
        with pytest.raises(ValueError, match=r"expected shape \(2,\), got \(3,\)"):
            self.rnn(backend)(torch.randn(6, 2, 3), lengths=[1, 2, 3])

    def test_lengths_with_packed(self, backend):
        packed = pack_padded_sequence(torch.randn(6, 2, 3), [6, 2])
        with pytest.raises(ValueError, match="lengths must not be given with a PackedSequence"):
            self.rnn(backend)(packed, lengths=[6, 2])

    def test_dtype_mismatch(self, backend):
        with pytest.raises(
            ValueError,
            match="input dtype must match the parameters: "
            "expected torch.float32, got torch.float64",
        ):
            self.rnn(backend)(torch.randn(6, 2, 3, dtype=torch.float64))

    def test_h0_dtype_mismatch(self, backend):
        with pytest.raises(
            ValueError,
            match="hx dtype must match the parameters: expected torch.float32, got torch.float64",
        ):
            self.rnn(backend)(torch.randn(6, 2, 3), torch.zeros(2, 2, 4, dtype=torch.float64))

    def test_integer_input(self, backend):
        with pytest.raises(
            ValueError, match="input must be a floating-point tensor, got dtype torch.int64"
        ):
            self.rnn(backend)(torch.ones(6, 2, 3, dtype=torch.long))

    def test_device_mismatch(self, backend):
        rnn = self.rnn(backend).to("meta")
        with pytest.raises(
            ValueError, match="input must be on the parameters' device: expected meta, got cpu"
        ):
            rnn(torch.randn(6, 2, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["autograd", "bptt"])
def test_cuda_parity_with_nn_rnn(backend):
    # cuDNN computes float32 RNNs in TF32 by default (~5e-4 off exact float32): compare
    # exact maths, as the numerics tools do.
    with exact_float32():
        ref = torch.nn.RNN(8, 16, num_layers=2, bidirectional=True).cuda()
        ours = ElmanRNN.from_torch(ref, backend=backend)
        x = torch.randn(20, 4, 8, device="cuda", requires_grad=True)
        packed = pack_padded_sequence(x, [20, 5, 13, 1], enforce_sorted=False)
        (ref_out, ref_h), (out, h) = ref(packed), ours(packed)
        torch.testing.assert_close(out.data, ref_out.data, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(h, ref_h, rtol=1e-4, atol=1e-5)
        ref_g = torch.autograd.grad(ref_out.data.sum() + ref_h.sum(), list(ref.parameters()))
        our_g = torch.autograd.grad(out.data.sum() + h.sum(), list(ours.parameters()))
        for a, b in zip(our_g, ref_g, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
