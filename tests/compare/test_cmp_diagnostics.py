"""GradientDiagnostics: one ‖∂L/∂h_t‖ per time step, the textbook decay, PNG/CSV/TensorBoard."""

import math
import warnings

import lightning as L
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from seqmodels import ElmanCell, ElmanRNN, Recurrent
from seqmodels.data import AddingDataModule
from seqmodels.diagnostics.gradients import GradientDiagnostics, find_encoder, load_csv
from seqmodels.diagnostics.precision import exact_float32
from seqmodels.diagnostics.stepping import HiddenGradientProbe, SteppedModule, stepped_forward
from seqmodels.tasks import SequenceClassifier

T = 30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_encoder(kind: str, hidden: int = 16, nonlinearity: str = "tanh", init: str = "default"):
    if kind == "nn.RNN":
        return nn.RNN(2, hidden, batch_first=True, nonlinearity=nonlinearity)
    return ElmanRNN(2, hidden, batch_first=True, nonlinearity=nonlinearity, backend=kind, init=init)


def scale_recurrent_(encoder: nn.Module, factor: float) -> None:
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "weight_hh" in name:
                p.mul_(factor)


def fit(encoder, tmp_path, steps=6, every=2, clip=None, logger=False, **trainer_kwargs):
    task = SequenceClassifier(encoder, num_classes=None, head="regression")
    diag = GradientDiagnostics(every_n_steps=every)
    dm = AddingDataModule(length=T, n_train=256, n_val=16, n_test=16, batch_size=32, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = L.Trainer(
            max_steps=steps,
            callbacks=[diag],
            logger=logger,
            gradient_clip_val=clip,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            default_root_dir=tmp_path,
            **trainer_kwargs,
        )
        trainer.fit(task, datamodule=dm)
    return diag, trainer


def manual_top_layer_grads(rnn: nn.RNN, x: torch.Tensor, loss_fn) -> torch.Tensor:
    """‖∂L/∂h_t‖ of the top layer from an explicit Python loop with retain_grad."""
    n = x.shape[1]
    hs = [torch.zeros(n, rnn.hidden_size) for _ in range(rnn.num_layers)]
    tops = []
    for t in range(x.shape[0]):
        inp = x[t]
        for layer in range(rnn.num_layers):
            w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
            b = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
            hs[layer] = torch.tanh(inp @ w_ih.T + hs[layer] @ w_hh.T + b)
            inp = hs[layer]
        hs[-1].retain_grad()
        tops.append(hs[-1])
    loss_fn(torch.stack(tops)).backward()
    return torch.tensor([float(h.grad.norm()) for h in tops], dtype=torch.float64)


@pytest.mark.parametrize("kind", ["nn.RNN", "autograd", "bptt"])
def test_stepped_norms_are_the_total_derivative(kind):
    torch.manual_seed(0)
    ref = nn.RNN(4, 6, num_layers=2)
    module = ref if kind == "nn.RNN" else ElmanRNN.from_torch(ref, backend=kind)
    x = torch.randn(9, 3, 4)

    def loss_fn(out):  # direct terms at two steps: both halves of ∂L/∂h_t matter
        return (out[-1] ** 2).sum() + out[3].sum()

    expected = manual_top_layer_grads(ref, x, loss_fn)
    probe = HiddenGradientProbe()
    with SteppedModule(module, probe):
        out, h_n = module(x)
    fused_out, fused_h = module(x)
    torch.testing.assert_close(out, fused_out)
    torch.testing.assert_close(h_n, fused_h)
    loss_fn(out).backward()
    torch.testing.assert_close(probe.norms(), expected, rtol=1e-5, atol=1e-8)
    assert "forward" not in module.__dict__  # the patch is gone


def test_stepping_packed_input_with_initial_state_matches_fused():
    torch.manual_seed(0)
    for module in (nn.RNN(3, 5, 2), nn.GRU(3, 5), nn.LSTM(3, 5), ElmanRNN(3, 5, backend="bptt")):
        x, lengths = torch.randn(7, 4, 3), torch.tensor([3, 7, 1, 5])
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        slots = getattr(module, "num_layers", 1)
        h0 = torch.randn(slots, 4, 5)
        hx = (h0, torch.randn_like(h0)) if isinstance(module, nn.LSTM) else h0
        fused_out, fused_h = module(packed, hx)
        probe = HiddenGradientProbe()
        out, h_n = stepped_forward(module, packed, hx, probe)
        torch.testing.assert_close(out.data, fused_out.data)
        for a, b in zip(
            h_n if isinstance(h_n, tuple) else (h_n,),
            fused_h if isinstance(fused_h, tuple) else (fused_h,),
            strict=True,
        ):
            torch.testing.assert_close(a, b)
        (h_n[0] if isinstance(h_n, tuple) else h_n).sum().backward()
        norms = probe.norms()
        assert norms.shape == (7,) and bool((norms > 0).all())


class OneNodeOutputs(nn.Module):
    """nn.RNN whose output and final state leave through one autograd node, as cuDNN's do:
    when the loss uses only the output, that node hands the state's hook a None gradient."""

    def __init__(self, rnn: nn.RNN) -> None:
        super().__init__()
        self.rnn, self.batch_first = rnn, rnn.batch_first

    def forward(self, x, hx=None):
        out, h_n = self.rnn(x, hx)  # one time step: out (1, N, H), h_n (1, N, H)
        both = torch.cat([out, h_n])
        return tuple(both.split(1))


def test_a_none_state_gradient_counts_as_zero():
    torch.manual_seed(0)
    rnn, x = nn.RNN(3, 5), torch.randn(6, 2, 3)
    probes = [HiddenGradientProbe(), HiddenGradientProbe()]
    for module, probe in zip((rnn, OneNodeOutputs(rnn)), probes, strict=True):
        out, _ = stepped_forward(module, x, None, probe)
        out[-1].sum().backward()  # h_n unused: its hook receives None at the last step
    torch.testing.assert_close(probes[1].norms(), probes[0].norms())
    assert bool((probes[1].norms() > 0).all())


@pytest.mark.parametrize("backend", ["autograd", "bptt"])
def test_padded_input_with_lengths_is_stepped_like_the_packed_batch(backend):
    torch.manual_seed(0)
    rnn = ElmanRNN(3, 5, num_layers=2, batch_first=True, backend=backend)
    x, lengths = torch.randn(4, 7, 3), torch.tensor([3, 7, 1, 5])
    fused_out, fused_h = rnn(x, lengths=lengths)
    probe, packed_probe = HiddenGradientProbe(), HiddenGradientProbe()
    with SteppedModule(rnn, probe):
        out, h_n = rnn(x, None, lengths=lengths)
    torch.testing.assert_close(out, fused_out)
    torch.testing.assert_close(h_n, fused_h)
    h_n.sum().backward()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    stepped_forward(rnn, packed, None, packed_probe)[1].sum().backward()
    torch.testing.assert_close(probe.norms(), packed_probe.norms())
    assert bool((probe.norms() > 0).all())


def test_generic_layer_can_be_stepped():
    layer = Recurrent(ElmanCell(3, 5))
    probe = HiddenGradientProbe()
    out, _ = stepped_forward(layer, torch.randn(6, 2, 3), None, probe)
    out[-1].sum().backward()
    assert probe.norms().shape == (6,)


def test_bidirectional_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="unidirectional"):
        SteppedModule(ElmanRNN(3, 5, bidirectional=True), HiddenGradientProbe())


@pytest.mark.parametrize("kind", ["nn.RNN", "autograd", "bptt"])
def test_tanh_with_small_recurrent_weights_vanishes(kind, tmp_path):
    torch.manual_seed(0)
    encoder = make_encoder(kind)
    scale_recurrent_(encoder, 0.5)
    diag, _ = fit(encoder, tmp_path)
    assert diag.steps == [0, 2, 4]
    matrix = diag.matrix()
    assert matrix.shape == (3, T)  # one norm per time step per recorded step
    assert bool(torch.isfinite(matrix).all()) and bool((matrix > 0).all())
    # The adding target depends on the last step's state only: the gradient reaching the
    # first steps is orders of magnitude smaller than at the last one.
    assert bool((matrix[:, -1] > 1e4 * matrix[:, :3].max(1).values).all()), matrix
    assert bool((matrix[:, -5:].mean(1) > 100 * matrix[:, :5].mean(1)).all())


def test_backends_record_the_same_norms(tmp_path):
    results = {}
    for kind in ("nn.RNN", "autograd", "bptt"):
        torch.manual_seed(0)
        encoder = make_encoder(kind)
        with exact_float32():  # cuDNN's float32 RNN would otherwise run in TF32 on a GPU
            diag, _ = fit(encoder, tmp_path / kind, steps=1, every=1)
        results[kind] = diag.matrix()[0]
    ref = results["nn.RNN"]
    for kind in ("autograd", "bptt"):
        torch.testing.assert_close(results[kind], ref, rtol=1e-4, atol=1e-12)


def test_identity_relu_keeps_the_gradient_alive(tmp_path):
    torch.manual_seed(0)
    tanh = make_encoder("bptt")
    scale_recurrent_(tanh, 0.5)
    tanh_diag, _ = fit(tanh, tmp_path / "tanh", steps=1, every=1)
    torch.manual_seed(0)
    irnn = make_encoder("bptt", nonlinearity="relu", init="identity")
    irnn_diag, _ = fit(irnn, tmp_path / "irnn", steps=1, every=1)

    def decay(diag):
        row = diag.matrix()[0]
        return math.log10(float(row[-1]) / float(row[0]))

    assert decay(tanh_diag) > 4  # orders of magnitude
    assert decay(irnn_diag) < 1.5  # within a factor of ~30 over all T steps
    assert decay(tanh_diag) > decay(irnn_diag) + 3


def test_clipping_is_measured_before_and_after(tmp_path):
    torch.manual_seed(0)
    diag, _ = fit(make_encoder("bptt"), tmp_path, steps=4, every=1, clip=0.01)
    assert len(diag.grad_norm_before) == len(diag.grad_norm_after) == 4
    for before, after in zip(diag.grad_norm_before, diag.grad_norm_after, strict=True):
        assert before > 0.01
        assert after == pytest.approx(0.01, rel=1e-3)
    torch.manual_seed(0)
    free, _ = fit(make_encoder("bptt"), tmp_path / "free", steps=2, every=1)
    assert free.grad_norm_after == pytest.approx(free.grad_norm_before)


def test_png_csv_scalars_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboardX")
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    torch.manual_seed(0)
    loggers = [CSVLogger(tmp_path, name="", version=""), TensorBoardLogger(tmp_path, name="tb")]
    diag, trainer = fit(make_encoder("bptt"), tmp_path, steps=4, every=2, logger=loggers)
    png, csv_path = tmp_path / "gradient_diagnostics.png", tmp_path / "gradient_diagnostics.csv"
    assert png.exists() and png.stat().st_size > 5000
    assert png.read_bytes()[:8] == PNG_MAGIC
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert float(image[..., :3].std()) > 0.05  # a picture, not a blank canvas
    back = load_csv(csv_path)
    assert back["steps"] == [0, 2]
    torch.testing.assert_close(back["norms"], diag.matrix(), rtol=1e-6, atol=0)
    metrics = (tmp_path / "metrics.csv").read_text()
    for key in ("grad_h_first", "grad_h_last", "grad_h_decay", "grad_norm_before_clip"):
        assert f"diagnostics/{key}" in metrics
    events = list((tmp_path / "tb").rglob("events.out.tfevents*"))
    assert events and max(e.stat().st_size for e in events) > 5000  # the figure is in there
    assert "forward" not in trainer.lightning_module.body.encoder.__dict__


def test_gradient_accumulation_records_once_per_optimizer_step(tmp_path):
    torch.manual_seed(0)
    diag, _ = fit(make_encoder("autograd"), tmp_path, steps=3, every=1, accumulate_grad_batches=2)
    assert diag.steps == [0, 1, 2]
    assert diag.matrix().shape == (3, T)


def test_find_encoder_and_bad_arguments():
    task = SequenceClassifier(ElmanRNN(2, 4, batch_first=True), num_classes=None, head="regression")
    assert find_encoder(task)[0] == "body.encoder"
    assert find_encoder(task, "body.encoder")[1] is task.body.encoder
    with pytest.raises(ValueError, match="no submodule"):
        find_encoder(task, "body.nope")
    with pytest.raises(ValueError, match="no recurrent module"):
        find_encoder(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="every_n_steps"):
        GradientDiagnostics(every_n_steps=0)


def test_state_dict_round_trip(tmp_path):
    diag, _ = fit(make_encoder("bptt"), tmp_path, steps=2, every=1)
    other = GradientDiagnostics()
    other.load_state_dict(diag.state_dict())
    torch.testing.assert_close(other.matrix(), diag.matrix())
    assert other.steps == diag.steps
