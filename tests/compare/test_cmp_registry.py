"""The one registry of implementations, and TF32 handling for comparisons on a GPU."""

import pytest
import torch
from torch import nn

from seqmodels import ElmanRNN
from seqmodels.diagnostics.implementations import (
    CELLS,
    build_implementations,
    copies_of,
    implementation_names,
    own_copy,
)
from seqmodels.diagnostics.numerics import PAIRS, Architecture, compare_numerics, pairs_of
from seqmodels.diagnostics.precision import exact_float32, tf32_flags


def test_elman_names_and_pairs():
    assert implementation_names("elman") == ("nn.RNN", "autograd", "bptt", "torch", "auto")
    assert PAIRS == pairs_of("elman")
    assert PAIRS == (
        ("autograd", "nn.RNN"),
        ("bptt", "nn.RNN"),
        ("torch", "nn.RNN"),
        ("auto", "nn.RNN"),
        ("bptt", "autograd"),
    )


def test_every_implementation_holds_its_own_copy_of_the_same_weights():
    models = build_implementations(
        "elman", seed=0, input_size=3, hidden_size=4, num_layers=2, bidirectional=True
    )
    assert isinstance(models["nn.RNN"], nn.RNN)
    backends = [models[name].backend for name in ("autograd", "bptt", "torch", "auto")]
    assert backends == ["autograd", "bptt", "torch", "auto"]
    params = {name: dict(m.named_parameters()) for name, m in models.items()}
    assert params["nn.RNN"].keys() == params["bptt"].keys() == params["autograd"].keys()
    pointers = [p.data_ptr() for named in params.values() for p in named.values()]
    assert len(set(pointers)) == len(pointers)  # nothing shared between modules
    for key, ref in params["nn.RNN"].items():
        for name in ("autograd", "bptt", "torch", "auto"):
            torch.testing.assert_close(params[name][key], ref, rtol=0, atol=0)


def test_the_reference_is_a_fresh_module_whose_flat_weights_are_its_parameters():
    torch.manual_seed(0)
    source = nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True)
    ref = copies_of(source)["nn.RNN"]
    assert ref is not source and (ref.nonlinearity, ref.batch_first) == ("relu", True)
    # what flatten_parameters and cuDNN read are the module's own parameters, not a stale set
    assert all(a is b for a, b in zip(ref._flat_weights, ref.parameters(), strict=True))
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(ref(x)[0], source(x)[0])
    assert own_copy(source, ("nonlinearity",)).training == source.training


def test_seeded_builds_repeat_and_follow_nn_rnn_init():
    a = build_implementations(seed=3, input_size=2, hidden_size=5)
    b = build_implementations(seed=3, input_size=2, hidden_size=5)
    torch.manual_seed(3)
    plain = nn.RNN(2, 5)
    for name in a:
        for (key, p), q in zip(
            a[name].state_dict().items(), b[name].state_dict().values(), strict=True
        ):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
            torch.testing.assert_close(p, plain.state_dict()[key], rtol=0, atol=0)


def test_bad_names_and_options_are_refused():
    with pytest.raises(ValueError, match="elman"):
        build_implementations("lstm_typo", input_size=2, hidden_size=3)
    with pytest.raises(TypeError, match="nonlinearity"):
        build_implementations("elman", input_size=2, hidden_size=3, nonlinearty="relu")
    with pytest.raises(ValueError, match="nn.RNN|RNN"):
        copies_of(ElmanRNN(2, 3))
    assert set(CELLS) >= {"elman"}


def test_exact_float32_turns_tf32_off_and_restores_the_flags():
    before = tf32_flags()
    try:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, True
        with exact_float32() as seen:
            assert (seen.cudnn, seen.matmul) == (True, True)
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (
            True,
            True,
        )
        torch.backends.cuda.matmul.allow_tf32 = False
        with pytest.raises(RuntimeError, match="inside"), exact_float32():
            raise RuntimeError("inside")
        assert torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32 = before.cudnn
        torch.backends.cuda.matmul.allow_tf32 = before.matmul


def test_numerics_report_says_tf32_was_off_and_what_the_caller_had():
    cudnn_before = torch.backends.cudnn.allow_tf32
    report = compare_numerics(Architecture(seq_len=4))
    assert report.precision.startswith("TF32 off")
    assert f"torch.backends.cudnn.allow_tf32={cudnn_before}" in report.precision
    assert torch.backends.cudnn.allow_tf32 == cudnn_before  # restored
    assert report.device == "cpu"
    text = report.to_markdown()
    assert "TF32 off" in text and "Device: cpu" in text
    assert report.to_dict()["precision"] == report.precision
