"""Speed of every implementation of a cell against torch's module, side by side.

Every configuration builds the registry's implementations
(:mod:`seqmodels.diagnostics.implementations`: ``torch.nn.RNN``,
``ElmanRNN(backend="autograd")`` and ``ElmanRNN(backend="bptt")``) with the same weights,
then times them round by round in one process, interleaved (the order rotates each round),
so drifting machine load hits all of them alike. Reported per implementation: the median
time of a training step (forward, ``loss = output.sum()``, backward) and of inference
(``torch.no_grad()``), tokens per second (batch x steps / time), the ratio to the reference
(> 1 is faster), achieved GFLOP/s as a fraction of a matrix-multiply roof measured on the
same machine, the peak memory allocated during one training step, and (in the JSON report,
where the OS counts them) the minor page faults per call: a step that first-touches fresh
memory pays for every page, and how often that happens depends on the allocator's state,
so the same module can time 30-50 % apart in two processes.

The command line is ``seqmodels-bench`` (:mod:`seqmodels.cli.bench`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from copy import deepcopy
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from seqmodels.diagnostics.implementations import build_implementations, cell_kind
from seqmodels.layers.backends import cpu_capability, cpuinfo
from seqmodels.layers.recurrent import Recurrent, check_regulariser


@dataclass(frozen=True)
class Config:
    name: str
    batch: int
    steps: int
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    cell: str = "elman"  # a key of seqmodels.diagnostics.implementations.CELLS

    def flops_forward(self) -> float:
        """Multiply-adds x 2 of the forward pass (the GEMMs; activations are negligible).

        A gated cell's GEMMs are ``GATES[cell]`` times as wide (LSTM 4, GRU 3)."""
        directions = 2 if self.bidirectional else 1
        gates = GATES.get(self.cell, 1)
        total = 0.0
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else self.hidden_size * directions
            recurrent = 0 if self.cell in DIAGONAL else self.hidden_size**2
            per_step = 2 * self.batch * (layer_in * self.hidden_size + recurrent)
            total += directions * self.steps * per_step * gates
        return total


#: Gate blocks per cell kind: how many times wider its GEMMs are than an Elman cell's.
GATES = {"elman": 1, "lstm": 4, "gru": 3, "user": 3, "lnlstm": 4, "lngru": 3, "indrnn": 1}
#: Cell kinds whose recurrence is elementwise: no h x W_hh GEMM per step.
DIAGONAL = {"indrnn"}

CONFIGS = {
    "A": Config("A", 32, 100, 64, 128),
    "B": Config("B", 64, 200, 128, 256),
    "C": Config("C", 32, 100, 64, 128, num_layers=2),
    "D": Config("D", 32, 100, 64, 128, bidirectional=True),
    "E": Config("E", 128, 50, 256, 512),
    "F": Config("F", 1, 1000, 32, 64),
}


def training_step(model: nn.Module, x: torch.Tensor) -> None:
    output, _ = model(x)
    output.sum().backward()  # a loss over all outputs that allocates nothing of its own
    for p in model.parameters():
        p.grad = None


def inference_step(model: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        model(x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], None], reps: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / reps


def minor_page_faults() -> int | None:
    """Minor page faults of this process so far (first touches of fresh memory), or
    ``None`` where the OS does not report them (``resource`` is Unix-only)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _reps_for(fn: Callable[[], None], device: torch.device, min_seconds: float) -> int:
    """How many calls make one measurement last at least ``min_seconds``."""
    once = _time(fn, 1, device)
    return max(1, int(min_seconds / max(once, 1e-9)))


def matmul_roof(
    device: torch.device, dtype: torch.dtype, size: int = 1024, rounds: int = 5
) -> float:
    """GFLOP/s of one large square matrix multiply: the practical ceiling on this machine."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    times = [_time(lambda: torch.mm(a, b), 3, device) for _ in range(rounds)]
    return 2 * size**3 / statistics.median(times) / 1e9


def peak_training_memory(model: nn.Module, x: torch.Tensor) -> float:
    """Peak bytes allocated during one training step, above what was allocated before it."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        base = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        training_step(model, x)
        torch.cuda.synchronize(x.device)
        return float(torch.cuda.max_memory_allocated(x.device) - base)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        training_step(model, x)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return float(peak)


def bench_config(
    cfg: Config,
    device: torch.device,
    dtype: torch.dtype,
    rounds: int,
    warmup: int,
    min_seconds: float,
    memory: bool,
    names: list[str] | None = None,
    regularisers: dict[str, float] | None = None,
    compiled: bool = False,
) -> dict:
    models = build_implementations(
        cfg.cell,
        names=names,
        seed=0,
        device=device,
        dtype=dtype,
        input_size=cfg.input_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        bidirectional=cfg.bidirectional,
    )
    if regularisers:
        models = with_regularised(models, regularisers)
    if compiled:
        torch._dynamo.reset()  # each configuration compiles afresh, within the recompile limit
        models = with_compiled(models)
    x = torch.randn(cfg.steps, cfg.batch, cfg.input_size, device=device, dtype=dtype)
    result: dict = {"config": asdict(cfg), "implementations": {}}
    for mode, step in (("train", training_step), ("infer", inference_step)):
        fns = {name: (lambda m=model, s=step: s(m, x)) for name, model in models.items()}
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        reps = {name: _reps_for(fn, device, min_seconds) for name, fn in fns.items()}
        samples: dict[str, list[float]] = {name: [] for name in fns}
        faults: dict[str, list[float]] = {name: [] for name in fns}
        names = list(fns)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
            for name in order:
                before = minor_page_faults()
                samples[name].append(_time(fns[name], reps[name], device))
                if before is not None:
                    faults[name].append((minor_page_faults() - before) / reps[name])
        flops = cfg.flops_forward() * (3 if mode == "train" else 1)  # backward ~ 2x forward
        for name in names:
            seconds = statistics.median(samples[name])
            entry = result["implementations"].setdefault(name, {})
            entry[f"{mode}_ms"] = seconds * 1e3
            entry[f"{mode}_tokens_per_s"] = cfg.batch * cfg.steps / seconds
            entry[f"{mode}_gflops"] = flops / seconds / 1e9
            entry[f"{mode}_rounds_ms"] = [s * 1e3 for s in samples[name]]
            # Fresh memory first touched per call: where one run's times differ from
            # another's with the same code, this is often why (the allocator's state).
            if faults[name]:
                entry[f"{mode}_page_faults"] = statistics.median(faults[name])
    ref = result["implementations"][cell_kind(cfg.cell).reference_name]
    for entry in result["implementations"].values():
        for mode in ("train", "infer"):
            entry[f"{mode}_ratio"] = ref[f"{mode}_ms"] / entry[f"{mode}_ms"]
    if memory:
        for name, model in models.items():
            peak = peak_training_memory(model, x)
            result["implementations"][name]["train_peak_mib"] = peak / 2**20
    return result


#: The rows that run as one custom op per layer and direction inside ``torch.compile``.
COMPILED_ROWS = ("bptt", "auto")


def with_compiled(models: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """``models`` with, after each row of :data:`COMPILED_ROWS` (regularised or not), the
    same module under ``torch.compile(fullgraph=True)`` (named ``"<name> +compile"``, the
    same weights), compiled by the warm-up calls."""
    out: dict[str, nn.Module] = {}
    for name, model in models.items():
        out[name] = model
        if name.removesuffix(" +reg") in COMPILED_ROWS:
            out[f"{name} +compile"] = torch.compile(model, fullgraph=True)
    return out


def with_regularised(
    models: dict[str, nn.Module], options: dict[str, float]
) -> dict[str, nn.Module]:
    """``models`` with, after each of seqmodels' implementations that takes ``options``
    (``weight_dropout``, ``recurrent_dropout``, ``zoneout``), a copy of it that applies them
    (named ``"<name> +reg"``), so the regularisers' cost is read side by side."""
    out: dict[str, nn.Module] = {}
    for name, model in models.items():
        out[name] = model
        layers = [m for m in model.modules() if isinstance(m, Recurrent)]
        if not layers or name.startswith("nn."):
            continue
        copy = deepcopy(model)
        try:
            if all(hasattr(copy, k) for k in options):  # a drop-in: every layer and direction
                for key, value in options.items():
                    setattr(copy, key, value)
            else:
                for layer in (m for m in copy.modules() if isinstance(m, Recurrent)):
                    for key, value in options.items():
                        setattr(layer, key, check_regulariser(key, value, layer.cell))
        except (TypeError, ValueError):  # this path refuses them (backend="torch", a cell)
            continue
        out[f"{name} +reg"] = copy
    return out


def to_markdown(report: dict) -> str:
    roof = report["matmul_roof_gflops"]
    reference = report.get("reference", "nn.RNN")
    lines = [
        f"Machine: {report['machine']}; torch {report['torch']}; {report['threads']} threads; "
        f"{report['dtype']}; median of {report['rounds']} rounds; "
        f"matmul roof {roof:.1f} GFLOP/s.",
        "",
        f"| config (B,T,I,H,L,dir) | implementation | train ms | train tokens/s "
        f"| train × {reference} | train % roof | infer ms | infer × {reference} "
        "| train peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in report["results"]:
        c = res["config"]
        label = (
            f"{c['name']} ({c['batch']},{c['steps']},{c['input_size']},{c['hidden_size']},"
            f"{c['num_layers']},{'bi' if c['bidirectional'] else 'uni'})"
        )
        for name, e in res["implementations"].items():
            peak = e.get("train_peak_mib")
            lines.append(
                f"| {label} | {name} | {e['train_ms']:.2f} | {e['train_tokens_per_s']:,.0f} "
                f"| {e['train_ratio']:.2f} | {100 * e['train_gflops'] / roof:.1f} "
                f"| {e['infer_ms']:.2f} | {e['infer_ratio']:.2f} "
                f"| {'' if peak is None else f'{peak:.1f}'} |"
            )
    return "\n".join(lines)


def _machine() -> str:
    import platform

    return cpuinfo("model name") or platform.processor() or platform.machine()


def run(
    configs: list[str],
    threads: int,
    rounds: int,
    warmup: int,
    quick: bool,
    device: str | None = None,
    dtype: str = "float32",
    memory: bool = True,
    cell: str = "elman",
    implementations: list[str] | None = None,
    regularisers: dict[str, float] | None = None,
    compiled: bool = False,
) -> dict:
    """Benchmark the named configurations of ``cell`` (a registry key: elman, lstm, gru),
    every implementation or those named in ``implementations`` beside the reference, and
    with ``regularisers`` (e.g. ``{"weight_dropout": 0.5}``) each of seqmodels' that takes
    them again, regularised, and with ``compiled`` the ``bptt`` and ``auto`` rows again under
    ``torch.compile`` (:func:`with_compiled`); returns the report (see :func:`to_markdown`)."""
    reference = cell_kind(cell).reference_name  # an unknown cell fails here, listing them
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; expected some of {sorted(CONFIGS)}")
    torch.set_num_threads(threads)
    dev = (
        torch.device(device)
        if device
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    torch_dtype = getattr(torch, dtype)
    min_seconds = 0.002 if quick else 0.2
    cfgs = [replace(CONFIGS[name], cell=cell) for name in configs]
    if quick:  # smoke test: shrink time and batch so the whole run takes seconds
        cfgs = [
            Config(
                c.name,
                max(1, c.batch // 8),
                max(5, c.steps // 20),
                c.input_size,
                c.hidden_size,
                c.num_layers,
                c.bidirectional,
                c.cell,
            )
            for c in cfgs
        ]
    # The roof is a ceiling: measure it between configurations and keep the best, so a
    # moment of load from elsewhere does not lower it (and inflate the % of roof).
    roof_size = 256 if quick else 1024
    roofs, results = [], []
    for c in cfgs:
        roofs.append(matmul_roof(dev, torch_dtype, size=roof_size))
        results.append(
            bench_config(
                c,
                dev,
                torch_dtype,
                rounds,
                warmup,
                min_seconds,
                memory,
                implementations,
                regularisers,
                compiled,
            )  # fmt: skip
        )
    roofs.append(matmul_roof(dev, torch_dtype, size=roof_size))
    return {
        "machine": f"{_machine()} ({dev.type}, {cpu_capability()})"
        if dev.type == "cpu"
        else torch.cuda.get_device_name(dev),
        "torch": torch.__version__,
        "threads": threads,
        "cell": cell,
        "reference": reference,
        "dtype": dtype,
        "rounds": rounds,
        "quick": quick,
        "matmul_roof_gflops": max(roofs),
        "regularisers": dict(regularisers or {}),
        "compiled": compiled,
        "results": results,
    }
