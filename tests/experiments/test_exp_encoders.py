"""Every experiment takes any encoder: elman, lstm, gru, generic (any cell), torch_rnn, and
the research modules lnlstm, lngru and indrnn."""

from __future__ import annotations

import json
import math

import pytest
from conftest import EXPERIMENTS, TINY, run_cli

from seqmodels import (
    GRU,
    LSTM,
    ElmanRNN,
    IndRNN,
    LayerNormGRU,
    LayerNormLSTM,
    LSTMCell,
    Recurrent,
)
from seqmodels.cli.train import train
from seqmodels.experiment.validate import ConfigKeyError, check_targets

PRESETS = [*EXPERIMENTS, "grad_diagnostics", "grad_diagnostics_irnn", "grad_diagnostics_clip"]
ENCODERS = ["elman", "lstm", "gru", "generic", "torch_rnn", "irnn", "lnlstm", "lngru", "indrnn"]


def tiny(experiment: str) -> list[str]:
    return TINY.get(experiment, ["model.encoder.hidden_size=8", "data.n_train=64"])


@pytest.mark.parametrize("experiment", PRESETS)
def test_every_preset_composes_with_every_encoder(experiment, compose_train):
    for encoder in ENCODERS:
        cfg = compose_train(f"experiment={experiment}", f"model/encoder={encoder}")
        check_targets(cfg)  # no key the chosen encoder does not take
    cfg = compose_train(
        f"experiment={experiment}", "model/encoder=generic", "model.encoder.cell=gru"
    )
    check_targets(cfg)


def test_presets_keep_their_encoders(compose_train):
    adding = compose_train("experiment=adding").model.encoder
    assert adding._target_ == "seqmodels.ElmanRNN" and adding.nonlinearity == "relu"
    irnn = compose_train("experiment=grad_diagnostics_clip").model.encoder
    assert (irnn.nonlinearity, irnn.init) == ("relu", "identity")
    tanh = compose_train("experiment=grad_diagnostics").model.encoder
    assert (tanh.nonlinearity, tanh.init, tanh.backend) == ("tanh", "default", "auto")


@pytest.mark.parametrize(
    ("experiment", "overrides", "encoder_type"),
    [
        ("char_lm", ["model/encoder=lstm"], LSTM),
        ("adding", ["model/encoder=gru"], GRU),
        ("copy_memory", ["model/encoder=lstm", "model.encoder.backend=autograd"], LSTM),
        ("seq2seq", ["model/encoder=gru"], GRU),
        ("tagging", ["model/encoder=generic", "model.encoder.cell=lstm"], None),
        ("grad_diagnostics_clip", ["model/encoder=lstm", "data.n_val=16", "data.n_test=16"], LSTM),
        ("classification", ["model/encoder=irnn"], ElmanRNN),
        ("char_lm", ["model/encoder=lnlstm"], LayerNormLSTM),
        ("tagging", ["model/encoder=lngru"], LayerNormGRU),
        ("adding", ["model/encoder=indrnn"], IndRNN),
    ],
)
def test_fast_dev_run_with_another_encoder(experiment, overrides, encoder_type, compose_train):
    cfg = compose_train(
        f"experiment={experiment}", *overrides, "debug=fast_dev_run", *tiny(experiment)
    )
    metrics, objects = train(cfg)
    assert math.isfinite(metrics["val/loss"])
    encoder = objects["model"].body.encoder
    if encoder_type is None:  # the generic layers over LSTMCell
        assert any(isinstance(m, LSTMCell) for m in encoder.modules())
    else:
        assert type(encoder) is encoder_type


def test_seq2seq_with_an_lstm_decoder_cell(compose_train):
    cfg = compose_train(
        "experiment=seq2seq",
        "model/encoder=lstm",
        "model.decoder_cell._target_=seqmodels.LSTMCell",
        "debug=fast_dev_run",
        *TINY["seq2seq"],
    )
    metrics, objects = train(cfg)
    assert math.isfinite(metrics["val/loss"])
    assert isinstance(objects["model"].decoder.cell, LSTMCell)


def test_keys_an_encoder_does_not_take_fail_all_at_once(compose_train):
    cfg = compose_train(
        "experiment=adding",
        "model/encoder=lstm",
        "+model.encoder.nonlinearity=relu",
        "+model.encoder.zork=1",
    )
    with pytest.raises(ConfigKeyError) as err:
        check_targets(cfg)
    message = str(err.value)
    assert "'nonlinearity', 'zork'" in message and "model/encoder=lstm" in message
    assert "'~model.encoder.nonlinearity' '~model.encoder.zork'" in message
    # the override the message names removes them
    check_targets(
        compose_train(
            "experiment=adding",
            "model/encoder=lstm",
            "+model.encoder.nonlinearity=relu",
            "+model.encoder.zork=1",
            "~model.encoder.nonlinearity",
            "~model.encoder.zork",
        )
    )


def test_cell_kwargs_the_generic_cell_does_not_take(compose_train):
    cfg = compose_train(
        "experiment=adding",
        "model/encoder=generic",
        "model.encoder.cell=lstm",
        "+model.encoder.cell_kwargs.nonlinearity=relu",
    )
    with pytest.raises(ConfigKeyError, match=r"'~model.encoder.cell_kwargs.nonlinearity'"):
        check_targets(cfg)


def test_documented_encoder_sweep_runs_every_job(tmp_path):
    result = run_cli(
        "seqmodels.cli.train",
        "-m",
        "experiment=adding",
        "model/encoder=elman,generic,torch_rnn",
        "debug=fast_dev_run",
        *TINY["adding"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = list((tmp_path / "logs" / "adding" / "multiruns").iterdir())
    jobs = json.loads((sweep / "sweep_summary.json").read_text())["jobs"]
    assert len(jobs) == 3
    assert all(job["status"] == "COMPLETED" for job in jobs), jobs


REGULARISED = ["elman", "lstm", "gru", "lnlstm", "lngru", "indrnn", "irnn", "generic"]
REGULARISERS = [
    "model.encoder.weight_dropout=0.3",
    "model.encoder.recurrent_dropout=0.2",
    "model.encoder.zoneout=0.1",
]


@pytest.mark.parametrize("experiment", PRESETS)
def test_every_preset_composes_with_the_regularisers(experiment, compose_train):
    for encoder in REGULARISED:
        cfg = compose_train(f"experiment={experiment}", f"model/encoder={encoder}", *REGULARISERS)
        check_targets(cfg)
        assert (cfg.model.encoder.weight_dropout, cfg.model.encoder.zoneout) == (0.3, 0.1)


def test_the_regularisers_reach_every_layer(compose_train):
    from hydra.utils import instantiate

    for encoder in REGULARISED:
        cfg = compose_train(
            "experiment=adding",
            f"model/encoder={encoder}",
            "model.encoder.input_size=2",
            "model.encoder.num_layers=2",
            "model.encoder.bidirectional=true",
            *REGULARISERS,
        )
        module = instantiate(cfg.model.encoder)
        layers = [m for m in module.modules() if isinstance(m, Recurrent)]
        assert len(layers) == 4, encoder
        for layer in layers:
            options = (layer.weight_dropout, layer.recurrent_dropout, layer.zoneout)
            assert options == (0.3, 0.2, 0.1), encoder


def test_torch_rnn_names_the_regularisers_it_does_not_take(compose_train):
    cfg = compose_train(
        "experiment=adding",
        "model/encoder=torch_rnn",
        "+model.encoder.weight_dropout=0.3",
        "+model.encoder.zoneout=0.1",
    )
    with pytest.raises(ConfigKeyError) as err:
        check_targets(cfg)
    message = str(err.value)
    assert "'~model.encoder.weight_dropout' '~model.encoder.zoneout'" in message
    assert "'weight_dropout' and 'zoneout' are seqmodels regularisers" in message
    assert "torch.nn.RNN does not take them" in message and "model/encoder=elman" in message


def test_torch_rnn_overriding_a_regulariser_explains_itself(compose_train):
    from hydra.errors import ConfigCompositionException

    from seqmodels.experiment.validate import explain_config_error

    with pytest.raises(ConfigCompositionException) as err:
        compose_train("experiment=adding", "model/encoder=torch_rnn", *REGULARISERS[:1])
    message = explain_config_error(err.value)
    assert "'weight_dropout' is a seqmodels regulariser; torch.nn.RNN does not take it" in message


@pytest.mark.parametrize("experiment", ["word_lm"])
def test_fast_dev_run_with_an_awd_lstm(experiment, compose_train):
    """AWD-LSTM's recurrent regularisation: weight drop on W_hh and variational dropout."""
    cfg = compose_train(
        f"experiment={experiment}",
        "model/encoder=lstm",
        "model.encoder.num_layers=2",
        "model.encoder.weight_dropout=0.5",
        "model.encoder.recurrent_dropout=0.2",
        "debug=fast_dev_run",
        *tiny(experiment),
    )
    metrics, objects = train(cfg)
    assert math.isfinite(metrics["val/loss"])
    encoder = objects["model"].body.encoder
    assert type(encoder) is LSTM
    assert (encoder.weight_dropout, encoder.recurrent_dropout, encoder.zoneout) == (0.5, 0.2, 0.0)
