"""Does ElmanRNN compute exactly what ``torch.nn.RNN`` computes? Largest differences, measured.

For one architecture, :func:`compare_numerics` builds ``torch.nn.RNN`` and
``ElmanRNN(backend="autograd")`` / ``ElmanRNN(backend="bptt")`` from the same weights, runs
the same input and initial state through each (optionally as a ``PackedSequence`` of
random lengths), back-propagates the same random projection of the outputs and final states,
and reports, for each pair, the largest difference in outputs, final states and every
gradient (each parameter, the input and ``h_0``).

Differences are reported two ways: absolute, ``max |a - b|``, and *scaled*,
``max |a - b| / max(1, max |b|)``: absolute for values up to 1, relative for large ones
(gradients summed over a batch and many steps grow with both, and float32 keeps ~7
significant digits of whatever size). The pass criterion is on the scaled difference.

Example::

    >>> from seqmodels.diagnostics.numerics import Architecture, compare_numerics
    >>> report = compare_numerics(Architecture(num_layers=2, bidirectional=True, packed=True))
    >>> report.passed()
    True
    >>> sorted(report.pairs)
    ['autograd vs nn.RNN', 'bptt vs autograd', 'bptt vs nn.RNN']
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from seqmodels.layers.elman_rnn import ElmanRNN

IMPLEMENTATIONS = ("nn.RNN", "autograd", "bptt")
# Which implementation each row compares, (candidate, reference).
PAIRS = (("autograd", "nn.RNN"), ("bptt", "nn.RNN"), ("bptt", "autograd"))


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
            lines += [
                "",
                "| implementation | train × nn.RNN | infer × nn.RNN |",
                "|---|---|---|",
            ]
            for name, ratios in self.speed.items():
                lines.append(f"| {name} | {ratios['train']:.2f} | {ratios['infer']:.2f} |")
        return "\n".join(lines)


def build_models(arch: Architecture, device: torch.device | str | None = None) -> dict:
    """``nn.RNN`` with seeded default init, and both ElmanRNN backends holding copies of it."""
    torch.manual_seed(arch.seed)
    ref = nn.RNN(
        arch.input_size,
        arch.hidden_size,
        arch.num_layers,
        nonlinearity=arch.nonlinearity,
        bias=arch.bias,
        batch_first=arch.batch_first,
        bidirectional=arch.bidirectional,
        device=device,
        dtype=getattr(torch, arch.dtype),
    )
    return {
        "nn.RNN": ref,
        "autograd": ElmanRNN.from_torch(ref, backend="autograd"),
        "bptt": ElmanRNN.from_torch(ref, backend="bptt"),
    }


def make_inputs(arch: Architecture, device: torch.device | str | None = None) -> dict:
    """Seeded input, lengths (packed: random in [1, T], the longest always T), h_0 and the
    random projections that turn outputs and final states into a scalar loss."""
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
    if device is not None:
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors | {"lengths": lengths}  # on the CPU, as pack_padded_sequence wants them


def run_once(model: nn.Module, arch: Architecture, data: dict) -> dict[str, Tensor]:
    """Forward and backward of one implementation; returns outputs, h_n and all gradients."""
    x = data["x"].detach().clone().requires_grad_(True)
    h0 = data["h0"].detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    if arch.packed:
        packed = pack_padded_sequence(
            x, data["lengths"], batch_first=arch.batch_first, enforce_sorted=False
        )
        out, h_n = model(packed, h0)
        assert isinstance(out, PackedSequence)
        proj = pack_padded_sequence(
            data["out_proj"], data["lengths"], batch_first=arch.batch_first, enforce_sorted=False
        )
        output = out.data  # (sum(lengths), D*H): compared as packed
        loss = (output * proj.data).sum()
    else:
        output, h_n = model(x, h0)
        loss = (output * data["out_proj"]).sum()
    loss = loss + (h_n * data["h_proj"]).sum()
    loss.backward()
    result = {"output": output.detach(), "h_n": h_n.detach()}
    for name, p in model.named_parameters():
        result[f"grad {name}"] = p.grad.detach().clone()
    result["grad input"] = x.grad.detach().clone()
    result["grad h_0"] = h0.grad.detach().clone()
    return result


def difference(a: Tensor, b: Tensor) -> Difference:
    """Largest absolute difference, and the same divided by ``max(1, max |b|)``."""
    diff = float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
    scale = max(1.0, float(b.double().abs().max()) if b.numel() else 0.0)
    return Difference(diff, diff / scale)


def perturb_(model: nn.Module, parameter: str, amount: float) -> str:
    """Add ``amount`` to entry ``[0, ...]`` of ``parameter`` in place; returns a description."""
    p = dict(model.named_parameters()).get(parameter)
    if p is None:
        names = ", ".join(n for n, _ in model.named_parameters())
        raise ValueError(f"no parameter {parameter!r} to perturb; the model has {names}")
    with torch.no_grad():
        p.view(-1)[0] += amount
    return f"{parameter}[0] += {amount:g} in bptt"


def speed_ratios(arch: Architecture, rounds: int = 3, quick: bool = True) -> dict:
    """Train/infer speed of each implementation relative to ``nn.RNN`` (> 1 is faster), from
    :mod:`seqmodels.bench` on this architecture's sizes (the benchmark runs tanh with bias,
    time-major and unpacked: those options do not change the amount of work)."""
    from seqmodels import bench

    cfg = bench.Config(
        "custom",
        arch.batch,
        arch.seq_len,
        arch.input_size,
        arch.hidden_size,
        arch.num_layers,
        arch.bidirectional,
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result = bench.bench_config(
        cfg,
        device,
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
    """Run the three implementations on ``arch`` and report the largest differences.

    ``perturb != 0`` adds that amount to one entry of ``perturb_parameter`` in the bptt
    model only: the comparison must then fail (a check that the check can fail).
    ``speed=True`` adds train/infer speed ratios from :mod:`seqmodels.bench`.
    """
    models = build_models(arch, device)
    note = perturb_(models["bptt"], perturb_parameter, perturb) if perturb else None
    data = make_inputs(arch, device)
    results = {name: run_once(model, arch, data) for name, model in models.items()}
    report = NumericsReport(arch, perturbation=note)
    for cand, ref in PAIRS:
        report.pairs[f"{cand} vs {ref}"] = {
            q: difference(results[cand][q], results[ref][q]) for q in results[ref]
        }
    if speed:
        report.speed = speed_ratios(arch, speed_rounds, quick)
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
    names = [f"{c} vs {r}" for c, r in PAIRS]
    lines = [
        "| architecture | " + " | ".join(names) + " | verdict |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for rep in reports:
        cells = [f"{rep.max_scaled(n):.1e}" for n in names]
        verdict = "PASS" if rep.passed() else "FAIL"
        lines.append(f"| {rep.architecture.label()} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)
