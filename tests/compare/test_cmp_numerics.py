"""Numerics mode: ElmanRNN (both backends) against torch.nn.RNN, and a check that can fail."""

import pytest
import torch

from seqmodels.diagnostics.numerics import (
    Architecture,
    architecture_grid,
    compare_numerics,
    grid_markdown,
)

GRID = architecture_grid()


def test_grid_covers_every_option():
    assert len(GRID) == 64
    for attr in ("num_layers", "bidirectional", "nonlinearity", "bias", "batch_first", "packed"):
        assert len({getattr(a, attr) for a in GRID}) == 2, attr


@pytest.mark.parametrize("arch", GRID, ids=lambda a: a.label().replace(" ", "-"))
def test_float32_differences_below_1e5(arch):
    report = compare_numerics(arch)
    assert set(report.pairs) == {
        "autograd vs nn.RNN",
        "bptt vs nn.RNN",
        "torch vs nn.RNN",
        "auto vs nn.RNN",
        "bptt vs autograd",
    }
    quantities = set(report.pairs["bptt vs nn.RNN"])
    # outputs, final states, the input's and h_0's gradients and every parameter's
    params = 2 * arch.num_layers * (2 if arch.bidirectional else 1) * (2 if arch.bias else 1)
    assert {"output", "h_n", "grad input", "grad h_0"} <= quantities
    assert sum(q.startswith("grad weight") or q.startswith("grad bias") for q in quantities) == (
        params
    )
    assert report.max_scaled() < 1e-5, report.to_markdown()
    assert report.passed()


def test_float64_differences_below_1e10():
    for arch in GRID[::9]:
        report = compare_numerics(Architecture(**{**arch.__dict__, "dtype": "float64"}))
        assert report.max_scaled() < 1e-10, report.to_markdown()


@pytest.mark.parametrize("parameter", ["weight_hh_l0", "bias_ih_l0", "weight_ih_l1_reverse"])
def test_perturbed_weight_is_reported(parameter):
    arch = Architecture(num_layers=2, bidirectional=True, packed=True)
    report = compare_numerics(arch, perturb=1e-2, perturb_parameter=parameter)
    assert not report.passed()
    assert report.max_scaled("bptt vs nn.RNN") > 1e-4
    assert report.max_scaled("bptt vs autograd") > 1e-4
    assert report.max_scaled("autograd vs nn.RNN") < 1e-5  # only bptt was perturbed
    text = report.to_markdown()
    assert "PERTURBED" in text and "FAIL" in text


def test_unknown_parameter_to_perturb_names_the_valid_ones():
    with pytest.raises(ValueError, match="weight_hh_l0"):
        compare_numerics(Architecture(), perturb=1.0, perturb_parameter="weight_hh_l7")


def test_speed_ratios_come_from_the_benchmark():
    report = compare_numerics(Architecture(seq_len=8), speed=True, speed_rounds=1)
    assert set(report.speed) == {"nn.RNN", "autograd", "bptt", "torch", "auto"}
    assert report.speed["nn.RNN"]["train"] == pytest.approx(1.0)
    assert all(r["train"] > 0 and r["infer"] > 0 for r in report.speed.values())
    assert "train × nn.RNN" in report.to_markdown()
    assert report.to_dict()["speed"] == report.speed


def test_grid_table_has_a_row_per_architecture():
    reports = [compare_numerics(a) for a in GRID[:3]]
    table = grid_markdown(reports)
    assert table.count("PASS") == 3
    assert len(table.splitlines()) == 2 + 3


def test_reports_are_deterministic():
    a = compare_numerics(Architecture(seed=3)).to_dict()
    b = compare_numerics(Architecture(seed=3)).to_dict()
    assert a == b
    assert torch.get_default_dtype() == torch.float32
