"""``weight_dropout``, ``recurrent_dropout`` and ``zoneout`` on the drop-ins ``ElmanRNN``,
``LSTM`` (with and without projections) and ``GRU``: every backend that runs them agrees
under one seed, eval mode is torch's module where only the dropouts are set, weight drop on
torch's kernel, ``"auto"``'s choice and its reason, the errors, and that the options change
nothing of torch's names, state dicts, pickling or conversions."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from seqmodels import GRU, LSTM, ElmanRNN
from seqmodels.layers.recurrent import Recurrent

# torch warns on every CPU call of an LSTM with projections that oneDNN has none.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

MODELS = {
    "elman": (ElmanRNN, {}),
    "elman_relu": (ElmanRNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, {}),
    "lstm_proj": (LSTM, {"proj_size": 2}),
    "gru": (GRU, {}),
}
ALL = {"weight_dropout": 0.4, "recurrent_dropout": 0.3, "zoneout": 0.25}
DROPOUTS = {"weight_dropout": 0.4, "recurrent_dropout": 0.3}


def build(name: str, backend: str = "auto", **options) -> nn.Module:
    cls, extra = MODELS[name]
    kwargs = {"num_layers": 2, "bidirectional": True, "dtype": torch.float64}
    return cls(3, 5, **extra, **kwargs, backend=backend, **options)


def run(model: nn.Module, x: torch.Tensor, seed: int = 7, **kwargs):
    """Outputs, final states and the gradients of every parameter and ``x``; the masks are
    drawn from ``seed``."""
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)
    out, state = model(x, **kwargs)
    states = state if isinstance(state, tuple) else (state,)
    loss = (out * out).sum() + sum((s * s).sum() for s in states)
    grads = torch.autograd.grad(loss, [x, *model.parameters()])
    return (out, *states, *grads)


def same(got, want, **tolerance) -> None:
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, **tolerance)


@pytest.mark.parametrize("options", [ALL, DROPOUTS], ids=["all", "dropouts"])
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_bptt_matches_autograd_under_one_seed(name, options, training):
    """The masks are drawn in the same order on both paths (layer by layer, forward
    direction first), inter-layer dropout included."""
    bptt = build(name, "bptt", dropout=0.2, **options).train(training)
    loop = build(name, "autograd", dropout=0.2, **options).train(training)
    loop.load_state_dict(bptt.state_dict())
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    same(run(bptt, x, lengths=[6, 2, 4]), run(loop, x, lengths=[6, 2, 4]))
    same(run(bptt, x), run(loop, x))


@pytest.mark.parametrize("name", list(MODELS))
def test_training_draws_new_masks_per_call(name):
    model = build(name, "bptt", **ALL).train()
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    first, second = model(x)[0], model(x)[0]
    assert not torch.equal(first, second)
    torch.manual_seed(3)
    again = model(x)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(model(x)[0], again, rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["bptt", "autograd", "torch", "auto"])
@pytest.mark.parametrize("name", list(MODELS))
def test_eval_mode_dropouts_are_the_plain_module_and_torchs(name, backend):
    # backend="torch" refuses recurrent_dropout: it would act in training
    options = {"weight_dropout": 0.4} if backend == "torch" else DROPOUTS
    plain = build(name, backend).eval()
    regularised = build(name, backend, **options).eval()
    regularised.load_state_dict(plain.state_dict())
    reference = plain.to_torch().eval()
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    got = run(regularised, x)
    same(got, run(plain, x), rtol=0, atol=0)
    if regularised.resolved_backend(x) == "torch":  # the very kernel nn.LSTM calls
        same(got, run(reference, x), rtol=0, atol=0)
    else:
        same(got, run(reference, x))


@pytest.mark.parametrize("name", list(MODELS))
def test_weight_drop_on_torchs_kernel_matches_bptt_under_one_seed(name):
    """``backend="torch"`` masks each ``W_hh`` in the cells' order, as the layers do."""
    fused = build(name, "torch", weight_dropout=0.5).train()
    layers = build(name, "bptt", weight_dropout=0.5).train()
    layers.load_state_dict(fused.state_dict())
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    assert fused.resolved_backend(x) == "torch"
    same(run(fused, x), run(layers, x))
    same(run(fused, x, lengths=[6, 2, 4]), run(layers, x, lengths=[6, 2, 4]))


def test_weight_drop_on_torchs_kernel_zeroes_half_the_recurrent_gradient():
    torch.manual_seed(0)
    lstm = LSTM(16, 128, backend="torch", weight_dropout=0.5).train()
    out, _ = lstm(torch.randn(20, 4, 16))
    out.sum().backward()
    zeros = (lstm.weight_hh_l0.grad == 0).float().mean().item()
    assert 0.45 <= zeros <= 0.55, zeros
    assert (lstm.weight_ih_l0.grad == 0).float().mean().item() < 0.01  # W_ih is not dropped
    lstm.eval()  # eval: no mask, every gradient entry reached
    lstm.zero_grad()
    lstm(torch.randn(20, 4, 16))[0].sum().backward()
    assert (lstm.weight_hh_l0.grad == 0).float().mean().item() < 0.01


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name", ["elman", "lstm", "lstm_proj", "gru"])
def test_auto_leaves_torch_where_a_regulariser_acts_in_the_recurrence(name, device):
    """``meta`` stands in for a GPU: any device but the CPU resolves to torch's kernel."""
    x = torch.empty(6, 3, 3, dtype=torch.float64, device=device)
    plain = build(name).to(device)
    for training in (True, False):
        usual = plain.train(training).resolved_backend(x)
        dropouts = build(name, **DROPOUTS).to(device).train(training)
        assert dropouts.resolved_backend(x) == (usual if not training else "bptt")
        if training:
            assert "recurrent_dropout=0.3" in dropouts.resolution(x).reason
        zoned = build(name, zoneout=0.1).to(device).train(training)
        resolution = zoned.resolution(x)
        assert resolution.backend == "bptt" and "zoneout=0.1" in resolution.reason
        weight = build(name, weight_dropout=0.5).to(device).train(training)
        assert weight.resolved_backend(x) == usual  # weight drop runs on torch's kernel
    if device == "meta":
        assert plain.resolved_backend(x) == "torch"


def test_auto_reason_names_the_option_alongside_the_others():
    lstm = LSTM(3, 5, recurrent_dropout=0.2).train()
    reason = lstm.resolution(torch.randn(4, 2, 3)).reason
    assert reason.startswith("torch's kernels cannot run it: recurrent_dropout=0.2")
    lstm.recurrent_dropout = 0.0  # set on every layer
    assert "recurrent_dropout" not in lstm.resolution(torch.randn(4, 2, 3)).reason


@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout"])
@pytest.mark.parametrize("cls", [ElmanRNN, LSTM, GRU])
def test_backend_torch_refuses_what_its_kernel_cannot_apply(cls, option):
    with pytest.raises(ValueError, match=rf"backend='torch' cannot run this module: {option}=0.2"):
        cls(3, 5, backend="torch", **{option: 0.2})
    model = cls(3, 5, **{option: 0.2})
    with pytest.raises(ValueError, match=rf"{option}=0.2"):
        model.backend = "torch"
    assert model.backend == "auto"
    on_torch = cls(3, 5, backend="torch", weight_dropout=0.2)
    with pytest.raises(ValueError, match=rf"{option}=0.1"):
        setattr(on_torch, option, 0.1)
    assert getattr(on_torch, option) == 0.0
    setattr(model, option, 0.0)
    model.backend = "torch"  # nothing left that torch's kernel cannot apply


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, True, "0.1", None])
@pytest.mark.parametrize("option", ["weight_dropout", "recurrent_dropout", "zoneout"])
@pytest.mark.parametrize("cls", [ElmanRNN, LSTM, GRU])
def test_options_out_of_range_raise_naming_the_option(cls, option, value):
    message = rf"{option} must be a probability in \[0, 1\), got {value!r}"
    with pytest.raises(ValueError, match=message):
        cls(3, 5, **{option: value})
    model = cls(3, 5)
    with pytest.raises(ValueError, match=message):
        setattr(model, option, value)


def test_options_reach_every_layer_and_direction():
    lstm = LSTM(3, 5, num_layers=3, bidirectional=True, proj_size=2, **ALL)
    layers = list(lstm.recurrent_layers())
    assert len(layers) == 6 and all(isinstance(layer, Recurrent) for layer in layers)
    for layer in layers:
        assert (layer.weight_dropout, layer.recurrent_dropout, layer.zoneout) == (0.4, 0.3, 0.25)
    lstm.weight_dropout = 0.1
    assert {layer.weight_dropout for layer in layers} == {0.1}


@pytest.mark.parametrize("name", list(MODELS))
def test_names_and_state_dicts_are_torchs_both_ways(name):
    model = build(name, **ALL)
    reference = model.to_torch()
    assert type(reference) is model.torch_class  # the plain module: torch has no such options
    assert list(model.state_dict()) == list(reference.state_dict())
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in reference.named_parameters()]
    assert "weight_hh_l0" in model.state_dict()
    fresh = build(name, **ALL)
    fresh.load_state_dict(reference.state_dict())
    reference.load_state_dict(model.state_dict())
    for a, b in zip(fresh.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_state_dict_round_trip_with_nn_lstm():
    lstm = LSTM(3, 5, num_layers=2, weight_dropout=0.5, recurrent_dropout=0.3, zoneout=0.1)
    reference = nn.LSTM(3, 5, num_layers=2)
    reference.load_state_dict(lstm.state_dict())
    back = LSTM(3, 5, num_layers=2, weight_dropout=0.5, recurrent_dropout=0.3, zoneout=0.1)
    back.load_state_dict(reference.state_dict())
    for a, b in zip(back.state_dict().values(), lstm.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_from_torch_takes_the_options():
    reference = nn.GRU(3, 5, num_layers=2, bidirectional=True)
    gru = GRU.from_torch(reference, backend="bptt", weight_dropout=0.2, zoneout=0.1)
    assert (gru.weight_dropout, gru.recurrent_dropout, gru.zoneout) == (0.2, 0.0, 0.1)
    assert gru.backend == "bptt"
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(gru.eval().to_torch()(x)[0], reference(x)[0])
    with pytest.raises(ValueError, match="zoneout=0.1"):
        GRU.from_torch(reference, backend="torch", zoneout=0.1)


def test_repr_shows_the_options_after_torchs_arguments():
    lstm = LSTM(3, 5, num_layers=2, proj_size=2, weight_dropout=0.5, zoneout=0.1)
    head = repr(lstm).splitlines()[1].strip()
    torchs = "3, 5, num_layers=2, proj_size=2"
    assert head == f"{torchs}, weight_dropout=0.5, zoneout=0.1, backend='auto'"
    assert "dropout" not in repr(ElmanRNN(3, 5)).splitlines()[1]


@pytest.mark.parametrize("cls", [ElmanRNN, LSTM, GRU])
def test_whole_model_pickles_and_loads_weights_only(cls):
    from test_dropin_pickling import WordModel, seqmodels_classes

    model = WordModel(cls(3, 5, num_layers=2, **ALL)).eval()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    allowed = [WordModel, nn.Embedding, nn.Linear, *seqmodels_classes()]
    with torch.serialization.safe_globals(allowed):
        loaded = torch.load(buffer, weights_only=True)
    assert (loaded.rnn.weight_dropout, loaded.rnn.recurrent_dropout, loaded.rnn.zoneout) == (
        0.4,
        0.3,
        0.25,
    )
    tokens = torch.randint(0, 11, (6, 2))
    torch.testing.assert_close(loaded(tokens), model(tokens), rtol=0, atol=0)
