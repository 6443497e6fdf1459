"""The compiled forms as custom ops (:mod:`seqmodels.kernels.ops`): torch's own checks of
each op (``torch.library.opcheck``: schema, fake tensors, autograd registration, AOT
dispatch), ``gradcheck`` through each op's registered backward, and the drop-ins under
``torch.compile(fullgraph=True)`` and ``torch.export`` on every backend, against eager."""

from __future__ import annotations

import pytest
import torch

from seqmodels import GRU, LSTM, ElmanRNN, IndRNN, Recurrent
from seqmodels.cells import LSTMCell
from seqmodels.kernels import compiled, ops
from seqmodels.kernels.common import last_step_index
from seqmodels.kernels.elman import ElmanBPTT
from seqmodels.kernels.gated import CompiledGRU, CompiledLSTM
from seqmodels.kernels.indrnn import DiagonalWalk
from seqmodels.kernels.regularisation import Regularisation

pytestmark = pytest.mark.skipif(
    not compiled.available("cpu", torch.float64), reason="the compiled loops are not built here"
)

BATCH, FEATURES, HIDDEN, STEPS = 3, 3, 4, 5
#: (lengths, reverse, recurrent dropout's mask, zoneout's d): each way the loops are called
CASES = {
    "plain": (None, False, None, None),
    "reversed": (None, True, None, None),
    "padded": ([5, 2, 4], False, None, None),
    "dropout": (None, False, "mask", None),
    "zoneout": ([5, 2, 4], False, None, "steps"),
    "zoneout-eval-reversed": (None, True, "mask", "one"),
}
GATES = {"lstm": 4, "gru": 3, "elman": 1, "indrnn": 1}


def arguments(cell: str, case: str, dtype=torch.float64, grad: bool = True) -> tuple:
    """The op's arguments: tensors (requiring grad where ``grad``) then its options."""
    lengths, reverse, mask, keep = CASES[case]
    torch.manual_seed(0)
    width = GATES[cell] * HIDDEN

    def tensor(*shape):
        return torch.randn(*shape, dtype=dtype).mul_(0.5).requires_grad_(grad)

    states = [tensor(BATCH, HIDDEN) for _ in range(2 if cell == "lstm" else 1)]
    weights = [tensor(width, FEATURES), tensor(width, HIDDEN), tensor(width), tensor(width)]
    lengths = None if lengths is None else torch.tensor(lengths)
    if cell == "indrnn":  # its walk starts from the input projection a (T, N, H)
        a, h0, w_hh = tensor(STEPS, BATCH, HIDDEN), states[0], tensor(HIDDEN)
        last = last_step_index(lengths, STEPS, BATCH, reverse)
        return (a, w_hh, h0, lengths, last, reverse, False, *_masks(mask, keep, dtype))
    mask, keep = _masks(mask, keep, dtype)
    options = (lengths, reverse, False) if cell == "elman" else (lengths, reverse)
    return (tensor(STEPS, BATCH, FEATURES), *states, *weights, *options, mask, keep)


def _masks(mask, keep, dtype):
    """Recurrent dropout's mask and zoneout's d (each step's, or one for every step)."""
    if mask is not None:
        mask = torch.bernoulli(torch.full((BATCH, HIDDEN), 0.7, dtype=dtype)) / 0.7
    if keep == "steps":
        keep = torch.bernoulli(torch.full((STEPS, BATCH, HIDDEN), 0.3, dtype=dtype))
    elif keep == "one":
        keep = torch.full((1, BATCH, HIDDEN), 0.3, dtype=dtype)
    return mask, keep


OP = {"lstm": ops.lstm, "gru": ops.gru, "elman": ops.elman, "indrnn": ops.indrnn}
#: how many of an op's outputs are the layer's (the rest are what backward reads)
RESULTS = {"lstm": 3, "gru": 2, "elman": 2, "indrnn": 2}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("cell", list(OP))
def test_opcheck(cell, case):
    torch.library.opcheck(OP[cell], arguments(cell, case))


@pytest.mark.parametrize("case", ["plain", "padded", "reversed"])
def test_opcheck_of_the_lstm_inference_op(case):
    args = arguments("lstm", case, grad=False)[:-2]  # no masks: the inference op takes none
    torch.library.opcheck(ops.lstm_forward_only, args)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("cell", list(OP))
def test_gradcheck_through_the_registered_backward(cell, case):
    args = arguments(cell, case)
    count = sum(isinstance(a, torch.Tensor) and a.requires_grad for a in args)
    tensors, options = args[:count], args[count:]

    def call(*tensors):
        return OP[cell](*tensors, *options)[: RESULTS[cell]]

    assert torch.autograd.gradcheck(call, tensors)


@pytest.mark.parametrize("cell", list(OP))
def test_each_op_computes_what_its_eager_kernel_does(cell):
    """The op and the eager Function behind it, on the same float32 call."""
    args = arguments(cell, "zoneout", dtype=torch.float32)
    count = sum(isinstance(a, torch.Tensor) and a.requires_grad for a in args)
    got = OP[cell](*args)[: RESULTS[cell]]
    grads = torch.autograd.grad(sum(g.sum() for g in got), args[:count])

    tensors, (lengths, reverse), (mask, keep) = args[:count], args[count:][:2], args[-2:]
    if cell == "indrnn":
        lengths, last, reverse = args[count:][:3]
        walk = ops._diagonal_walk(False, reverse, mask, keep)
        expected = DiagonalWalk.apply(*tensors, walk, lengths, last)
    else:
        function = {"lstm": CompiledLSTM, "gru": CompiledGRU, "elman": ElmanBPTT}[cell]
        cell_arg = ops._elman_cell(False) if cell == "elman" else None
        reg = Regularisation(mask, keep)
        expected = function.apply(*tensors, cell_arg, lengths, reverse, reg)[: RESULTS[cell]]
    expected_grads = torch.autograd.grad(sum(e.sum() for e in expected), tensors)
    for g, e in zip((*got, *grads), (*expected, *expected_grads), strict=True):
        torch.testing.assert_close(g, e)


DROP_INS = {"LSTM": LSTM, "GRU": GRU, "RNN": ElmanRNN}
#: every module whose cells' kernels are ops
MODULES = {**DROP_INS, "IndRNN": IndRNN}


def _grads(module, output) -> list[torch.Tensor]:
    weights = torch.randn_like(output, generator=torch.Generator().manual_seed(3))
    return list(torch.autograd.grad((output * weights).sum(), list(module.parameters())))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["bptt", "auto", "torch", "autograd"])
@pytest.mark.parametrize("kind", list(DROP_INS))
def test_compile_fullgraph_matches_eager(kind, backend):
    """One graph for a stacked, bidirectional drop-in, forwards and backwards: the same
    values, final states and weight gradients as eager."""
    torch.manual_seed(0)
    module = DROP_INS[kind](3, 5, num_layers=2, bidirectional=True, backend=backend)
    x = torch.randn(6, 2, 3)
    torch._dynamo.reset()
    compiled_module = torch.compile(module, fullgraph=True)
    got, expected = compiled_module(x), module(x)
    torch.testing.assert_close(got, expected)
    for g, e in zip(_grads(module, got[0]), _grads(module, expected[0]), strict=True):
        torch.testing.assert_close(g, e)


@pytest.mark.slow
def test_compile_fullgraph_of_a_padded_batch_and_of_inference():
    torch.manual_seed(0)
    lstm = LSTM(3, 5, num_layers=2, batch_first=True)
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    torch._dynamo.reset()
    compiled_lstm = torch.compile(lstm, fullgraph=True)
    torch.testing.assert_close(compiled_lstm(x, lengths=lengths), lstm(x, lengths=lengths))
    with torch.no_grad():
        torch.testing.assert_close(compiled_lstm(x), lstm(x))


@pytest.mark.slow
def test_auto_compiles_a_padded_batch_where_the_cpu_table_picks_torch(monkeypatch):
    """torch's kernel packs a padded batch on the host, which Dynamo cannot trace: inside
    torch.compile auto runs the ops instead, on any CPU (here AVX2's table row for torch)."""
    from seqmodels.layers import backends

    monkeypatch.setattr(backends, "_CPU_CAPABILITY", "AVX2")
    torch.manual_seed(0)
    lstm = LSTM(3, 5)
    x, lengths = torch.randn(6, 2, 3), torch.tensor([6, 3])
    assert lstm.resolved_backend(x) == "torch"
    torch._dynamo.reset()
    got = torch.compile(lstm, fullgraph=True)(x, lengths=lengths)
    torch.testing.assert_close(got, lstm(x, lengths=lengths))


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(MODULES))
def test_compile_fullgraph_with_the_regularisers(kind):
    """Recurrent dropout and zoneout inside one graph: their masks are drawn in it
    (``bernoulli_``), so a training call is checked for its gradients' existence and an
    eval call (zoneout's fixed p) for its values."""
    torch.manual_seed(0)
    module = MODULES[kind](3, 5, num_layers=2, recurrent_dropout=0.25, zoneout=0.1)
    x = torch.randn(6, 2, 3)
    torch._dynamo.reset()
    compiled_module = torch.compile(module, fullgraph=True)
    output, _ = compiled_module(x)
    grads = _grads(module, output)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    module.eval()
    torch.testing.assert_close(compiled_module(x), module(x))


@pytest.mark.parametrize("kind", list(MODULES))
def test_torch_export_of_bptt_records_one_op_per_layer_and_direction(kind):
    torch.manual_seed(0)
    module = MODULES[kind](3, 5, num_layers=2, bidirectional=True, backend="bptt").eval()
    steps = torch.export.Dim("steps", min=2)
    program = torch.export.export(module, (torch.randn(6, 2, 3),), dynamic_shapes=({0: steps},))
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert sum(t.startswith("seqmodels.") for t in targets) == 4, targets
    for length in (6, 11):  # one program, any length
        x = torch.randn(length, 2, 3)
        torch.testing.assert_close(program.module()(x), module(x))


@pytest.mark.slow
def test_a_layer_of_a_cell_with_an_op_compiles_to_it():
    torch.manual_seed(0)
    layer = Recurrent(LSTMCell(3, 5), backend="bptt")
    x = torch.randn(6, 2, 3)
    torch._dynamo.reset()
    compiled_layer = torch.compile(layer, fullgraph=True)
    torch.testing.assert_close(compiled_layer(x), layer(x))


@pytest.mark.slow
def test_compile_fullgraph_of_indrnn_matches_eager():
    torch.manual_seed(0)
    module = IndRNN(3, 5, num_layers=2, bidirectional=True, backend="bptt")
    x = torch.randn(6, 2, 3)
    torch._dynamo.reset()
    got, expected = torch.compile(module, fullgraph=True)(x), module(x)
    torch.testing.assert_close(got, expected)
    for g, e in zip(_grads(module, got[0]), _grads(module, expected[0]), strict=True):
        torch.testing.assert_close(g, e)


def test_an_exported_program_saves_and_loads_with_its_ops(tmp_path):
    torch.manual_seed(0)
    module = GRU(3, 5, backend="bptt").eval()
    x = torch.randn(6, 2, 3)
    torch.export.save(torch.export.export(module, (x,)), tmp_path / "gru.pt2")
    program = torch.export.load(tmp_path / "gru.pt2")
    torch.testing.assert_close(program.module()(x), module(x))
