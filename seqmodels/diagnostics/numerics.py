"""Does seqmodels compute exactly what torch's RNN, LSTM and GRU compute? Largest differences.

For one architecture, :func:`compare_numerics` builds the registry's implementations of its
cell (:mod:`seqmodels.diagnostics.implementations`: for ``elman``, ``torch.nn.RNN`` and
``ElmanRNN(backend="autograd")`` / ``ElmanRNN(backend="bptt")``; for ``lstm`` and ``gru``,
``nn.LSTM`` / ``nn.GRU`` and the drop-in on each backend) from the same weights, runs
the same input and initial state through each (optionally as a ``PackedSequence`` of
random lengths), back-propagates the same random projection of the outputs and final states,
and reports, for each pair, the largest difference in outputs, final states and every
gradient (each parameter, the input and ``h_0``).

Differences are reported two ways: absolute, ``max |a - b|``, and *scaled*,
``max |a - b| / max(1, max |b|)``: absolute for values up to 1, relative for large ones
(gradients summed over a batch and many steps grow with both, and float32 keeps ~7
significant digits of whatever size). The pass criterion is on the scaled difference.

The comparison runs with TF32 off (:func:`~seqmodels.diagnostics.precision.exact_float32`):
on a GPU, cuDNN would otherwise compute ``nn.RNN``'s float32 products in TF32 and differ from
exact float32 by ~5e-4. The report says so, with the flags the caller had.

Example::

    >>> from seqmodels.diagnostics.numerics import Architecture, compare_numerics
    >>> report = compare_numerics(Architecture(num_layers=2, bidirectional=True, packed=True))
    >>> report.passed()
    True
    >>> sorted(report.pairs)  # doctest: +NORMALIZE_WHITESPACE
    ['auto vs nn.RNN', 'autograd vs nn.RNN', 'bptt vs autograd', 'bptt vs nn.RNN',
     'torch vs nn.RNN']
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from seqmodels.diagnostics.implementations import SHARED_OPTIONS, build_implementations, cell_kind
from seqmodels.diagnostics.precision import exact_float32

#: Backends that compute nothing of their own: ``torch`` runs the reference's kernel and
#: ``auto`` one of the other paths. They are compared with the reference only.
DELEGATING = ("torch", "auto")


def pairs_of(cell: str = "elman") -> tuple[tuple[str, str], ...]:
    """(candidate, reference) per column: each implementation against torch's module, then
    seqmodels' own computations against each other (the later against the earlier)."""
    kind = cell_kind(cell)
    names = list(kind.candidates)
    own = [name for name in names if name not in DELEGATING]
    return (
        *((name, kind.reference_name) for name in names),
        *((b, a) for a, b in itertools.combinations(own, 2)),
    )


# Which implementation each column of an Elman report compares, (candidate, reference).
PAIRS = pairs_of("elman")


@dataclass
class Architecture:
    """Everything that shapes the computation (``nn.RNN``'s arguments plus the data)."""

    input_size: int = 8
    hidden_size: int = 16
    num_layers: int = 1
    nonlinearity: str = "tanh"
    bias: bool = True
    batch_first: bool = False
    bidirectional: bool = False
    packed: bool = False
    seq_len: int = 12
    batch: int = 4
    dtype: str = "float32"
    seed: int = 0
    cell: str = "elman"  # a key of seqmodels.diagnostics.implementations.CELLS

    def module_options(self) -> dict:
        """The reference module's constructor keywords (``nonlinearity`` for Elman only)."""
        wanted = (*SHARED_OPTIONS, *cell_kind(self.cell).options)
        return {k: v for k, v in asdict(self).items() if k in wanted}

    def label(self) -> str:
        parts = [
            f"I={self.input_size}",
            f"H={self.hidden_size}",
            f"L={self.num_layers}",
            self.nonlinearity,
            "bias" if self.bias else "no-bias",
            "batch-first" if self.batch_first else "time-major",
            "bi" if self.bidirectional else "uni",
            "packed" if self.packed else "padded",
            f"T={self.seq_len}",
            f"N={self.batch}",
            self.dtype,
        ]
        return " ".join(parts)


@dataclass
class Difference:
    """Largest absolute and scaled difference of one quantity between two implementations."""

    abs: float
    scaled: float


@dataclass
class NumericsReport:
    """Per pair of implementations, per quantity (``output``, ``h_n``, ``grad <name>``)."""

    architecture: Architecture
    pairs: dict[str, dict[str, Difference]] = field(default_factory=dict)
    perturbation: str | None = None
    speed: dict[str, dict[str, float]] | None = None  # implementation -> train/infer ratios
    device: str = "cpu"
    precision: str = ""  # how TF32 was handled (see exact_float32)

    def max_scaled(self, pair: str | None = None) -> float:
        rows = [self.pairs[pair]] if pair else list(self.pairs.values())
        return max((d.scaled for row in rows for d in row.values()), default=0.0)

    def passed(self, tolerance: float | None = None) -> bool:
        """All scaled differences at most ``tolerance`` (1e-5 float32, 1e-10 float64)."""
        if tolerance is None:
            tolerance = 1e-10 if self.architecture.dtype == "float64" else 1e-5
        return self.max_scaled() <= tolerance

    def to_dict(self) -> dict:
        return {
            "architecture": asdict(self.architecture),
            "label": self.architecture.label(),
            "perturbation": self.perturbation,
            "device": self.device,
            "precision": self.precision,
            "max_scaled": self.max_scaled(),
            "passed": self.passed(),
            "pairs": {p: {q: asdict(d) for q, d in row.items()} for p, row in self.pairs.items()},
            "speed": self.speed,
        }

    def to_markdown(self) -> str:
        """One row per quantity, one column per pair: ``abs (scaled)``."""
        names = list(self.pairs)
        quantities = list(next(iter(self.pairs.values())))
        head = f"Architecture: {self.architecture.label()}"
        if self.perturbation:
            head += f"; PERTURBED: {self.perturbation}"
        lines = [
            head,
            f"Device: {self.device}; {self.precision}",
            "",
            "| quantity | " + " | ".join(f"{n}: max abs (scaled)" for n in names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for q in quantities:
            cells = [f"{self.pairs[n][q].abs:.2e} ({self.pairs[n][q].scaled:.2e})" for n in names]
            lines.append(f"| {q} | " + " | ".join(cells) + " |")
        verdict = "PASS" if self.passed() else "FAIL"
        lines.append(f"\nlargest scaled difference {self.max_scaled():.2e}: {verdict}")
        if self.speed:
            ref = cell_kind(self.architecture.cell).reference_name
            lines += [
                "",
                "Speed with torch's default flags (TF32 as the caller had it):",
                "",
                f"| implementation | train × {ref} | infer × {ref} |",
                "|---|---|---|",
            ]
            for name, ratios in self.speed.items():
                lines.append(f"| {name} | {ratios['train']:.2f} | {ratios['infer']:.2f} |")
        return "\n".join(lines)


def build_models(arch: Architecture, device: torch.device | str | None = None) -> dict:
    """The registry's implementations of ``arch.cell``, seeded, with the reference's weights."""
    return build_implementations(
        arch.cell,
        seed=arch.seed,
        device=device,
        dtype=getattr(torch, arch.dtype),
        **arch.module_options(),
    )


def make_inputs(
    arch: Architecture, device: torch.device | str | None = None, tuple_state: bool = False
) -> dict:
    """Seeded input, lengths (packed: random in [1, T], the longest always T), h_0 and the
    random projections that turn outputs and final states into a scalar loss.
    ``tuple_state`` (an LSTM): ``c_0`` and its projection too, drawn last."""
    g = torch.Generator().manual_seed(arch.seed + 1)
    dtype = getattr(torch, arch.dtype)
    d = 2 if arch.bidirectional else 1
    shape = (arch.batch, arch.seq_len) if arch.batch_first else (arch.seq_len, arch.batch)
    x = torch.randn(*shape, arch.input_size, generator=g, dtype=dtype)
    h0 = torch.randn(d * arch.num_layers, arch.batch, arch.hidden_size, generator=g, dtype=dtype)
    lengths = torch.randint(1, arch.seq_len + 1, (arch.batch,), generator=g)
    lengths[0] = arch.seq_len
    out_proj = torch.randn(*shape, d * arch.hidden_size, generator=g, dtype=dtype)
    h_proj = torch.randn(h0.shape, generator=g, dtype=dtype)
    tensors = {"x": x, "h0": h0, "out_proj": out_proj, "h_proj": h_proj}
    if tuple_state:
        tensors["c0"] = torch.randn(h0.shape, generator=g, dtype=dtype)
        tensors["c_proj"] = torch.randn(h0.shape, generator=g, dtype=dtype)
    if device is not None:
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors | {"lengths": lengths}  # on the CPU, as pack_padded_sequence wants them


def run_once(model: nn.Module, arch: Architecture, data: dict) -> dict[str, Tensor]:
    """Forward and backward of one implementation; returns outputs, h_n and all gradients."""
    x = data["x"].detach().clone().requires_grad_(True)
    h0 = data["h0"].detach().clone().requires_grad_(True)
    c0 = data["c0"].detach().clone().requires_grad_(True) if "c0" in data else None
    state0 = h0 if c0 is None else (h0, c0)
    model.zero_grad(set_to_none=True)
    if arch.packed:
        packed = pack_padded_sequence(
            x, data["lengths"], batch_first=arch.batch_first, enforce_sorted=False
        )
        out, h_n = model(packed, state0)
        assert isinstance(out, PackedSequence)
        proj = pack_padded_sequence(
            data["out_proj"], data["lengths"], batch_first=arch.batch_first, enforce_sorted=False
        )
        output = out.data  # (sum(lengths), D*H): compared as packed
        loss = (output * proj.data).sum()
    else:
        output, h_n = model(x, state0)
        loss = (output * data["out_proj"]).sum()
    c_n = None
    if c0 is not None:
        h_n, c_n = h_n
        loss = loss + (c_n * data["c_proj"]).sum()
    loss = loss + (h_n * data["h_proj"]).sum()
    loss.backward()
    result = {"output": output.detach(), "h_n": h_n.detach()}
    if c_n is not None:
        result["c_n"] = c_n.detach()
    for name, p in model.named_parameters():
        result[f"grad {name}"] = p.grad.detach().clone()
    result["grad input"] = x.grad.detach().clone()
    result["grad h_0"] = h0.grad.detach().clone()
    if c0 is not None:
        result["grad c_0"] = c0.grad.detach().clone()
    return result


def difference(a: Tensor, b: Tensor) -> Difference:
    """Largest absolute difference, and the same divided by ``max(1, max |b|)``."""
    diff = float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
    scale = max(1.0, float(b.double().abs().max()) if b.numel() else 0.0)
    return Difference(diff, diff / scale)


def perturb_(model: nn.Module, parameter: str, amount: float, name: str = "bptt") -> str:
    """Add ``amount`` to entry ``[0, ...]`` of ``parameter`` in place; returns a description."""
    p = dict(model.named_parameters()).get(parameter)
    if p is None:
        names = ", ".join(n for n, _ in model.named_parameters())
        raise ValueError(f"no parameter {parameter!r} to perturb; the model has {names}")
    with torch.no_grad():
        p.view(-1)[0] += amount
    return f"{parameter}[0] += {amount:g} in {name}"


def speed_ratios(
    arch: Architecture,
    rounds: int = 3,
    quick: bool = True,
    device: torch.device | str | None = None,
) -> dict:
    """Train/infer speed of each implementation relative to the reference (> 1 is faster),
    from :mod:`seqmodels.diagnostics.speed` on this architecture's sizes (the benchmark runs
    tanh with bias, time-major and unpacked: those options do not change the amount of work).
    """
    from seqmodels.diagnostics import speed

    cfg = speed.Config(
        "custom",
        arch.batch,
        arch.seq_len,
        arch.input_size,
        arch.hidden_size,
        arch.num_layers,
        arch.bidirectional,
        arch.cell,
    )
    result = speed.bench_config(
        cfg,
        torch.device(device or "cpu"),
        getattr(torch, arch.dtype),
        rounds=rounds,
        warmup=1,
        min_seconds=0.002 if quick else 0.2,
        memory=False,
    )
    return {
        name: {"train": e["train_ratio"], "infer": e["infer_ratio"]}
        for name, e in result["implementations"].items()
    }


def compare_numerics(
    arch: Architecture,
    perturb: float = 0.0,
    perturb_parameter: str = "weight_hh_l0",
    speed: bool = False,
    speed_rounds: int = 3,
    quick: bool = True,
    device: torch.device | str | None = None,
) -> NumericsReport:
    """Run every implementation of ``arch.cell`` on ``arch`` (on ``device``, default the CPU)
    and report the largest differences, with TF32 off (restored afterwards).

    ``perturb != 0`` adds that amount to one entry of ``perturb_parameter`` in the ``bptt``
    implementation only: the comparison must then fail (a check that the check can fail).
    ``speed=True`` adds train/infer speed ratios from :mod:`seqmodels.diagnostics.speed`,
    measured with the caller's TF32 flags.
    """
    models = build_models(arch, device)
    note = perturb_(models["bptt"], perturb_parameter, perturb, "bptt") if perturb else None
    data = make_inputs(arch, device, tuple_state=cell_kind(arch.cell).reference is nn.LSTM)
    with exact_float32() as before:
        results = {name: run_once(model, arch, data) for name, model in models.items()}
    where = next(next(iter(models.values())).parameters()).device
    report = NumericsReport(arch, perturbation=note, device=str(where))
    report.precision = before.describe()
    for cand, ref in pairs_of(arch.cell):
        report.pairs[f"{cand} vs {ref}"] = {
            q: difference(results[cand][q], results[ref][q]) for q in results[ref]
        }
    if speed:
        report.speed = speed_ratios(arch, speed_rounds, quick, where)
    return report


def architecture_grid(base: Architecture | None = None) -> list[Architecture]:
    """Every combination of layers {1, 2}, direction, nonlinearity, bias, batch-first and
    packing (64 architectures) around ``base``'s sizes."""
    base = base or Architecture()
    grid = itertools.product((1, 2), (False, True), ("tanh", "relu"), (True, False), (False, True))
    archs = []
    for i, (layers, bi, act, bias, packed) in enumerate(grid):
        for batch_first in (False, True):
            archs.append(
                replace(
                    base,
                    num_layers=layers,
                    bidirectional=bi,
                    nonlinearity=act,
                    bias=bias,
                    batch_first=batch_first,
                    packed=packed,
                    seed=base.seed + i,
                )
            )
    return archs


def grid_markdown(reports: list[NumericsReport]) -> str:
    """One row per architecture: the largest scaled difference of each pair."""
    cell = reports[0].architecture.cell if reports else "elman"
    names = [f"{c} vs {r}" for c, r in pairs_of(cell)]
    lines = [
        "| architecture | " + " | ".join(names) + " | verdict |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for rep in reports:
        cells = [f"{rep.max_scaled(n):.1e}" for n in names]
        verdict = "PASS" if rep.passed() else "FAIL"
        lines.append(f"| {rep.architecture.label()} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)


# --- any module or cell against a torch reference ------------------------------------------

#: The torch modules a module given by import path can be compared against.
TORCH_REFERENCES = {"nn.RNN": nn.RNN, "nn.LSTM": nn.LSTM, "nn.GRU": nn.GRU}
_LAYER_SUFFIX = re.compile(r"_l\d+(_reverse)?$")


def reference_class(name: str) -> type[nn.RNNBase]:
    """``"nn.LSTM"`` (or ``"LSTM"``, ``"torch.nn.LSTM"``) -> ``torch.nn.LSTM``."""
    key = "nn." + str(name).rsplit(".", 1)[-1]
    try:
        return TORCH_REFERENCES[key]
    except KeyError:
        raise ValueError(
            f"unknown reference {name!r}; expected one of {sorted(TORCH_REFERENCES)}"
        ) from None


def build_candidate(spec: Mapping[str, Any], arch: Architecture) -> nn.Module:
    """The module ``spec`` names (``{"_target_": "import.path", **kwargs}``), as a layer.

    A :class:`~seqmodels.RecurrentCell` is run over time by :class:`~seqmodels.Recurrent`
    (one layer, one direction) or :meth:`~seqmodels.Stacked.from_cell` (``arch``'s
    ``num_layers`` and ``bidirectional``; each layer's cell is built with its own
    ``input_size``); anything else is used as it is and must follow ``nn.RNN``'s calling
    convention ``module(input, state) -> (output, final_state)``.
    """
    from hydra.utils import instantiate

    from seqmodels.cells.base import RecurrentCell
    from seqmodels.layers import Recurrent, Stacked

    spec = dict(spec)
    if "_target_" not in spec:
        raise ValueError(f"the module spec needs a _target_ (an import path), got {spec}")
    module = instantiate(spec)
    if not isinstance(module, RecurrentCell):
        return module
    if arch.num_layers == 1 and not arch.bidirectional:
        return Recurrent(module, batch_first=arch.batch_first)
    return Stacked.from_cell(
        lambda size: instantiate({**spec, "input_size": size}),
        arch.input_size,
        arch.num_layers,
        bidirectional=arch.bidirectional,
        batch_first=arch.batch_first,
    )


def copy_weights(reference: nn.Module, candidate: nn.Module) -> dict[str, str]:
    """Load ``reference``'s weights into ``candidate``; returns reference name -> candidate name.

    The same names (a drop-in such as ``seqmodels.LSTM``): ``load_state_dict``. Otherwise
    parameters are paired in order, each candidate name ending in the reference's name
    without its ``_l<k>``/``_reverse`` suffix (``weight_ih_l1_reverse`` -> ``...weight_ih``),
    with equal shapes: how :meth:`Stacked.from_cell` and :class:`Bidirectional` lay out
    ``nn.RNN``'s layers and directions. Anything else is an error listing both sides.
    """
    ref = dict(reference.named_parameters())
    cand = dict(candidate.named_parameters())
    if set(ref) == set(cand):
        candidate.load_state_dict(reference.state_dict(), strict=False)
        return {name: name for name in ref}
    pairs = list(zip(ref.items(), cand.items(), strict=False))
    ok = len(ref) == len(cand) and all(
        (cn == _LAYER_SUFFIX.sub("", rn) or cn.endswith("." + _LAYER_SUFFIX.sub("", rn)))
        and rp.shape == cp.shape
        for (rn, rp), (cn, cp) in pairs
    )
    if not ok:
        ref_side = [f"{n} {tuple(t.shape)}" for n, t in ref.items()]
        cand_side = [f"{n} {tuple(t.shape)}" for n, t in cand.items()]
        raise ValueError(
            "cannot copy the reference's weights: its parameters "
            f"{ref_side} do not pair in order with the module's {cand_side}"
        )
    with torch.no_grad():
        for (_, rp), (_, cp) in pairs:
            cp.copy_(rp)
    return {rn: cn for (rn, _), (cn, _) in pairs}


def compare_module(
    spec: Mapping[str, Any],
    reference: str,
    arch: Architecture | None = None,
    device: torch.device | str | None = None,
    name: str | None = None,
) -> NumericsReport:
    """Compare any module or cell (``spec``: ``_target_`` + kwargs) with a torch reference.

    ``reference`` (``"nn.RNN"``, ``"nn.LSTM"``, ``"nn.GRU"``) is built from ``arch`` with
    torch's initialisation (seeded), its weights are copied into the module
    (:func:`copy_weights`), and both run the same input, initial state (``(h_0, c_0)`` for
    an LSTM) and loss as :func:`compare_numerics`, with TF32 off. Gradients are reported
    under the reference's parameter names.

    Example::

        >>> report = compare_module(
        ...     {"_target_": "seqmodels.LSTMCell", "input_size": 8, "hidden_size": 16},
        ...     "nn.LSTM",
        ...     Architecture(packed=True),
        ... )
        >>> report.passed(), list(report.pairs)
        (True, ['seqmodels.LSTMCell vs nn.LSTM'])
    """
    arch = arch or Architecture()
    cls = reference_class(reference)
    ref_name = f"nn.{cls.__name__}"
    dtype = getattr(torch, arch.dtype)
    options = {k: v for k, v in asdict(arch).items() if k in SHARED_OPTIONS}
    if cls is nn.RNN:
        options["nonlinearity"] = arch.nonlinearity
    torch.manual_seed(arch.seed)
    ref_module = cls(**options, device=device, dtype=dtype)
    candidate = build_candidate(spec, arch).to(device=device, dtype=dtype)
    names = copy_weights(ref_module, candidate)
    label = name or str(spec["_target_"])
    data = make_inputs(arch, device, tuple_state=cls is nn.LSTM)
    with exact_float32() as before:
        ref_result = run_once(ref_module, arch, data)
        raw = run_once(candidate, arch, data)
    by_candidate = {cn: rn for rn, cn in names.items()}
    result = {
        (f"grad {by_candidate[k[5:]]}" if k.startswith("grad ") and k[5:] in by_candidate else k): v
        for k, v in raw.items()
    }
    where = next(ref_module.parameters()).device
    report = NumericsReport(arch, device=str(where), precision=before.describe())
    report.pairs[f"{label} vs {ref_name}"] = {
        q: difference(result[q], ref_result[q]) for q in ref_result
    }
    return report
