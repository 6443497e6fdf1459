"""ElmanLayer: the hand-written BPTT inside generic Bidirectional/Stacked compositions."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from seqmodels import Bidirectional, ElmanCell, ElmanLayer, ElmanRNN, Recurrent, Stacked

LENGTHS = [6, 3, 1, 5]


def build(layer_factory):
    torch.manual_seed(3)
    return Stacked(
        [Bidirectional(layer_factory(3, 5), layer_factory(3, 5)), layer_factory(10, 5)],
        dropout=0.0,
    )


@pytest.mark.parametrize("backend", ["autograd", "bptt"])
@pytest.mark.parametrize("packed", [False, True], ids=["lengths", "packed"])
def test_elman_layer_matches_recurrent_elman_cell(backend, packed):
    ours = build(lambda i, h: ElmanLayer(i, h, backend=backend))
    ref = build(lambda i, h: Recurrent(ElmanCell(i, h)))
    ours.load_state_dict(ref.state_dict())  # same parameter names: ElmanLayer owns an ElmanCell
    x = torch.randn(6, 4, 3, requires_grad=True)
    results = []
    for net in (ours, ref):
        if packed:
            out, h = net(pack_padded_sequence(x, LENGTHS, enforce_sorted=False))
            out = out.data
        else:
            out, h = net(x, lengths=LENGTHS)
        grads = torch.autograd.grad(out.pow(2).sum() + h.sum(), [x, *net.parameters()])
        results.append((out, h, grads))
    (out_a, h_a, g_a), (out_b, h_b, g_b) = results
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(h_a, h_b)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(a, b)


def test_elman_layer_weights_load_into_elman_rnn():
    layer = ElmanLayer(3, 4, nonlinearity="relu")
    rnn = ElmanRNN(3, 4, nonlinearity="relu")
    rnn.load_state_dict({f"{k.split('.')[-1]}_l0": v for k, v in layer.state_dict().items()})
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(layer(x)[0], rnn(x)[0])


def test_elman_layer_rejects_unknown_backend():
    with pytest.raises(
        ValueError, match="unknown backend .fast.; expected one of auto, bptt, autograd, torch"
    ):
        ElmanLayer(3, 4, backend="fast")


def test_bptt_is_the_exact_cell_class_kernel_only():
    """A subclass may change the step, so it never silently inherits ElmanCell's kernel."""

    class LeakyElman(ElmanCell):
        def forward_projected(self, p_t, h):
            out, _ = super().forward_projected(p_t, h)
            h = 0.5 * h + 0.5 * out
            return h, h

    with pytest.raises(ValueError, match="LeakyElman has no hand-written BPTT"):
        Recurrent(LeakyElman(3, 4), backend="bptt")
    layer = Recurrent(ElmanCell(3, 4))
    assert layer.backend == "auto"
    x = torch.randn(5, 2, 3)
    assert layer.resolved_backend(x) == "bptt", "auto: the cell's hand-written BPTT"
    assert Recurrent(LeakyElman(3, 4)).resolved_backend(x) == "autograd"
    layer.backend = "autograd"
    expected = layer(x)
    layer.backend = "bptt"
    for got, want in zip(layer(x), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_backend_of_a_composition_is_set_throughout():
    net = Stacked([Bidirectional(ElmanLayer(3, 4)), ElmanLayer(8, 4)])
    assert net.backend == "auto"
    net.backend = "bptt"
    assert {m.backend for m in net.modules() if isinstance(m, Recurrent)} == {"bptt"}
    net.backend = "autograd"
    assert {m.backend for m in net.modules() if isinstance(m, Recurrent)} == {"autograd"}
    net.layers[0].backend = "bptt"
    assert net.backend == "mixed"
