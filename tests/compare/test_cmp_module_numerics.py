"""Numerics mode on any module or cell by import path, against nn.RNN / nn.LSTM / nn.GRU."""

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from seqmodels.cli.compare import NumericsOptions, register_compare_schema, run_numerics
from seqmodels.diagnostics.numerics import Architecture, compare_module
from seqmodels.experiment.entry import CONFIG_MODULE

SMALL = Architecture(input_size=3, hidden_size=5, seq_len=6, batch=3)


@pytest.mark.parametrize(
    ("target", "reference", "extra"),
    [
        ("seqmodels.LSTMCell", "nn.LSTM", {}),
        ("seqmodels.GRUCell", "nn.GRU", {}),
        ("seqmodels.ElmanCell", "nn.RNN", {}),
        ("seqmodels.LSTM", "nn.LSTM", {}),  # a drop-in: same parameter names
        ("torch.nn.GRU", "nn.GRU", {}),
    ],
)
@pytest.mark.parametrize(
    "options", [{}, {"num_layers": 2, "bidirectional": True, "packed": True, "batch_first": True}]
)
def test_cells_and_modules_match_their_reference(target, reference, extra, options):
    from dataclasses import replace

    arch = replace(SMALL, **options)
    spec = {"_target_": target, "input_size": 3, "hidden_size": 5, **extra}
    if not target.endswith("Cell"):
        spec |= {
            "num_layers": arch.num_layers,
            "bidirectional": arch.bidirectional,
            "batch_first": arch.batch_first,
        }
    report = compare_module(spec, reference, arch)
    assert report.passed(), report.to_markdown()
    row = report.pairs[f"{target} vs {reference}"]
    assert "grad weight_hh_l0" in row and "grad input" in row and "grad h_0" in row
    if arch.num_layers == 2 and arch.bidirectional:
        assert "grad weight_ih_l1_reverse" in row
    assert ("c_n" in row and "grad c_0" in row) == (reference == "nn.LSTM")


def test_a_wrong_cell_is_caught():
    """A GRU cell against nn.LSTM cannot even take its weights; an LSTM cell with a wrong
    forget-gate bias (a real bug) takes them and fails the comparison."""
    with pytest.raises(ValueError, match="do not pair"):
        compare_module(
            {"_target_": "seqmodels.GRUCell", "input_size": 3, "hidden_size": 5}, "nn.LSTM", SMALL
        )
    with pytest.raises(ValueError, match="unknown reference"):
        compare_module(
            {"_target_": "seqmodels.LSTMCell", "input_size": 3, "hidden_size": 5},
            "nn.Transformer",
            SMALL,
        )
    report = compare_module(
        {
            "_target_": "seqmodels.ElmanCell",
            "input_size": 3,
            "hidden_size": 5,
            "nonlinearity": "relu",
        },
        "nn.RNN",
        SMALL,
    )
    assert not report.passed()  # relu cell against a tanh nn.RNN


def test_cli_numerics_with_a_module(tmp_path):
    register_compare_schema()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(
            "compare",
            overrides=[
                "output_dir=unused",
                "numerics.reference=nn.LSTM",
                "numerics.module={_target_: seqmodels.LSTMCell, input_size: 32, hidden_size: 64}",
                "numerics.architecture.seq_len=5",
                "numerics.architecture.batch=2",
            ],
        )
    result = run_numerics(cfg.numerics, tmp_path)
    assert result["passed"] and result["module"]["_target_"] == "seqmodels.LSTMCell"
    assert "seqmodels.LSTMCell vs nn.LSTM" in (tmp_path / "numerics.md").read_text()
    plain = run_numerics(NumericsOptions(architecture=SMALL, speed=False), tmp_path)
    assert plain["passed"]  # the registry's comparison is unchanged
