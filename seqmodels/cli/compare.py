"""``seqmodels-compare`` (``python -m seqmodels.cli.compare``): seqmodels against torch's RNNs.

Two modes, one Hydra config (``seqmodels/conf/compare.yaml``; a misspelt key fails at start):

* ``mode=numerics``: for one architecture, the registry's implementations of its cell
  (:mod:`seqmodels.diagnostics.implementations`: for ``elman``, ``torch.nn.RNN``,
  ``ElmanRNN(backend="autograd")`` and ``ElmanRNN(backend="bptt")``; ``lstm`` and ``gru``
  likewise against ``nn.LSTM`` / ``nn.GRU``) with the same weights;
  a table of the largest differences in outputs, final states and every gradient, computed
  with TF32 off (cuDNN's default would add ~5e-4 on a GPU), plus speed ratios from the
  benchmark. Exits 1 when a difference exceeds the tolerance (1e-5 float32, 1e-10 float64)::

      seqmodels-compare                                  # the default architecture
      seqmodels-compare numerics.architecture.num_layers=2 numerics.architecture.packed=true
      seqmodels-compare numerics.grid=true numerics.speed=false   # 64 architectures
      seqmodels-compare numerics.perturb=1e-3            # must FAIL: the check can fail
      seqmodels-compare numerics.reference=nn.LSTM \\
          'numerics.module={_target_: seqmodels.LSTMCell, input_size: 32, hidden_size: 64}'

  ``numerics.module`` (``_target_`` + kwargs: any module, or any cell, which is run over
  time by ``Recurrent``/``Stacked.from_cell``) is compared against ``numerics.reference``
  (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) built from the architecture, its weights copied in.

* ``mode=training``: the same experiment once per encoder (same seed, same data) through
  :func:`seqmodels.cli.train.train`; a table of final metrics, wall time and tokens/s, and one
  PNG overlaying the learning curves::

      seqmodels-compare mode=training                    # short adding run (make compare)
      seqmodels-compare mode=training training.experiment=char_lm \\
          'training.extra="trainer.max_epochs=1 data.max_length=64"'

Results go to the run directory (``logs/compare/<mode>/<time>``): ``numerics.md`` /
``numerics.json``, or ``training.md``, ``training.json``, ``learning_curves.png`` and one
sub-directory per encoder run.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from seqmodels.diagnostics.numerics import (
    Architecture,
    architecture_grid,
    compare_module,
    compare_numerics,
    grid_markdown,
)
from seqmodels.experiment.entry import CONFIG_MODULE, CONFIG_PATH, run_main

log = logging.getLogger(__name__)

#: The encoders compared by default, as overrides of the training config: torch's own
#: ``nn.RNN`` (``nn_rnn``), then ``ElmanRNN`` on each backend.
DEFAULT_ENCODERS: dict[str, list[str]] = {
    "nn_rnn": ["model/encoder=torch_rnn"],
    "autograd": ["model/encoder=elman", "model.encoder.backend=autograd"],
    "bptt": ["model/encoder=elman", "model.encoder.backend=bptt"],
    "torch": ["model/encoder=elman", "model.encoder.backend=torch"],
    "auto": ["model/encoder=elman", "model.encoder.backend=auto"],
}
#: ``training.short=true`` (the default, and `make compare`): a run of a minute or so on two
#: CPU cores. Experiments without an entry get GENERIC_SHORT.
SHORT_RUNS: dict[str, list[str]] = {
    "adding": [
        "data.length=50",
        "data.n_train=2048",
        "data.n_val=256",
        "data.n_test=256",
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=4",
    ],
}
GENERIC_SHORT = [
    "trainer.max_epochs=1",
    "trainer.max_steps=200",
    "trainer.limit_val_batches=20",
    "trainer.limit_test_batches=20",
    "trainer.log_every_n_steps=10",
]


def short_overrides(experiment: str) -> list[str]:
    """The overrides that shorten ``experiment`` (see :data:`SHORT_RUNS`)."""
    return list(SHORT_RUNS.get(experiment, GENERIC_SHORT))


@dataclass
class NumericsOptions:
    architecture: Architecture = field(
        default_factory=lambda: Architecture(input_size=32, hidden_size=64, seq_len=50, batch=16)
    )
    grid: bool = False  # every combination of options around `architecture`'s sizes
    perturb: float = 0.0  # add this to one entry of `perturb_parameter` in the bptt model
    perturb_parameter: str = "weight_hh_l0"
    speed: bool = True  # speed ratios from seqmodels.diagnostics.speed on these sizes
    speed_rounds: int = 5
    quick: bool = False  # shorter timings (smoke tests)
    tolerance: float | None = None  # None: 1e-5 float32, 1e-10 float64
    device: str | None = None  # None: cuda if available, else cpu
    # Any module or cell by import path, against `reference` instead of the registry:
    # numerics.module={_target_: seqmodels.LSTMCell, input_size: 32, hidden_size: 64}
    module: Any = None  # (Any: OmegaConf cannot assign a dict over a None Dict node)
    reference: str = "nn.RNN"  # nn.RNN | nn.LSTM | nn.GRU (with `module`)


@dataclass
class TrainingOptions:
    experiment: str = "adding"
    encoders: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_ENCODERS))
    short: bool = True  # shorten the experiment (short_overrides) before `overrides`
    overrides: list[str] = field(default_factory=list)
    # More overrides in one string, after `overrides` (no list quoting on a command line):
    # 'training.extra="trainer.max_epochs=1 data.n_train=512"'
    extra: str = ""
    metrics: list[str] | None = None  # None: every val/ and test/ metric
    curves: list[str] = field(default_factory=lambda: ["train/loss_step", "val/loss"])


@dataclass
class CompareConfig:
    mode: str = "numerics"
    output_dir: str = MISSING
    threads: int | None = None  # torch.set_num_threads for the whole comparison (null: as is)
    numerics: NumericsOptions = field(default_factory=NumericsOptions)
    training: TrainingOptions = field(default_factory=TrainingOptions)


def register_compare_schema() -> None:
    ConfigStore.instance().store(name="compare_schema", node=CompareConfig)


# --- numerics ----------------------------------------------------------------------------


def run_numerics(options: NumericsOptions | DictConfig, output_dir: str | Path) -> dict:
    """Compare the three implementations; print and write the table; returns the report."""
    opts = _as_dataclass(options, NumericsOptions)
    arch = opts.architecture
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if opts.module is not None:
        report = compare_module(opts.module, opts.reference, arch, device=device)
        table = report.to_markdown()
        passed = report.passed(opts.tolerance)
        result = report.to_dict() | {"passed": passed, "module": dict(opts.module)}
    elif opts.grid:
        reports = [compare_numerics(a, device=device) for a in architecture_grid(arch)]
        note = f"Device: {reports[0].device}; {reports[0].precision}"
        table = note + "\n\n" + grid_markdown(reports)
        passed = all(r.passed(opts.tolerance) for r in reports)
        result = {"grid": [r.to_dict() for r in reports], "passed": passed}
    else:
        report = compare_numerics(
            arch,
            perturb=opts.perturb,
            perturb_parameter=opts.perturb_parameter,
            speed=opts.speed,
            speed_rounds=opts.speed_rounds,
            quick=opts.quick,
            device=device,
        )
        table = report.to_markdown()
        passed = report.passed(opts.tolerance)
        result = report.to_dict() | {"passed": passed}
    print(table)
    (output_dir / "numerics.md").write_text(table + "\n")
    (output_dir / "numerics.json").write_text(json.dumps(result, indent=2))
    return result


# --- training ----------------------------------------------------------------------------


def compose_train(overrides: list[str]) -> DictConfig:
    """The training config (``train.yaml``) with ``overrides``, inside or outside an app."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from seqmodels.experiment.schema import register_configs

    register_configs()
    if GlobalHydra.instance().is_initialized():  # inside seqmodels-compare: same search path
        return compose(config_name="train", overrides=overrides)
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def training_configs(opts: TrainingOptions, output_dir: Path) -> dict[str, DictConfig]:
    """The training config of every encoder, composed and checked before any run starts.

    A misspelt key, a wrong type or a key its ``_target_`` does not take in the *last*
    encoder fails here, naming the encoder, not after the others have trained.
    """
    from seqmodels.experiment.validate import check_targets, explain_config_error

    if not opts.encoders:
        raise ValueError("training.encoders is empty; expected at least one encoder to train")
    configs: dict[str, DictConfig] = {}
    for name, encoder_overrides in opts.encoders.items():
        overrides = [
            f"experiment={opts.experiment}",
            *encoder_overrides,
            *(short_overrides(opts.experiment) if opts.short else []),
            *opts.overrides,
            *shlex.split(opts.extra),
            f"paths.output_dir={output_dir / name}",
            "+callbacks.compare_throughput._target_=seqmodels.diagnostics.throughput.Throughput",
        ]
        log.info("compare: encoder %s: %s", name, overrides)
        try:
            cfg = compose_train(overrides)
            check_targets(cfg)
        except Exception as err:  # noqa: BLE001 - re-raised naming the encoder
            raise EncoderConfigError(
                f"encoder {name!r} (training.encoders.{name}={list(encoder_overrides)}): "
                f"{explain_config_error(err)}"
            ) from err
        configs[name] = cfg
    return configs


class EncoderConfigError(ValueError):
    """One encoder's training config does not compose or names keys its target lacks."""


def run_training(options: TrainingOptions | DictConfig, output_dir: str | Path) -> dict:
    """Train ``options.experiment`` once per encoder; write the table and the curves."""
    from seqmodels.cli.train import train
    from seqmodels.diagnostics.plots import overlay_learning_curves, save_figure
    from seqmodels.diagnostics.throughput import Throughput

    opts = _as_dataclass(options, TrainingOptions)
    output_dir = Path(output_dir)
    rows: list[dict[str, Any]] = []
    curves: dict[str, Path] = {}
    configs = training_configs(opts, output_dir)  # every encoder checked before any trains
    for name, cfg in configs.items():
        run_dir = output_dir / name
        log.info("compare: training %s", name)
        started = time.perf_counter()
        metrics, objects = train(cfg)
        wall = time.perf_counter() - started
        meter = next(c for c in objects["callbacks"] if isinstance(c, Throughput))
        wanted = opts.metrics or sorted(k for k in metrics if k.startswith(("val/", "test/")))
        rows.append(
            {
                "encoder": name,
                "wall_s": wall,
                **meter.summary(),
                "global_step": objects["trainer"].global_step,
                "metrics": {k: metrics[k] for k in wanted if k in metrics},
                "run_dir": str(run_dir),
            }
        )
        if (run_dir / "metrics.csv").exists():
            curves[name] = run_dir / "metrics.csv"
    reference = rows[0]["tokens_per_s"] or 1.0
    for row in rows:
        row["speed_vs_first"] = row["tokens_per_s"] / reference
    table = training_markdown(opts.experiment, rows)
    print(table)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "training.md").write_text(table + "\n")
    (output_dir / "training.json").write_text(json.dumps(rows, indent=2))
    plot = None
    if curves:
        fig = overlay_learning_curves(curves, opts.curves)
        fig.suptitle(f"{opts.experiment}: " + " vs ".join(curves))
        fig.tight_layout()
        plot = save_figure(fig, output_dir / "learning_curves.png")
    return {"rows": rows, "table": table, "plot": str(plot) if plot else None}


def training_markdown(experiment: str, rows: list[dict[str, Any]]) -> str:
    names = sorted({k for row in rows for k in row["metrics"]})
    first = rows[0]["encoder"] if rows else ""
    head = [
        "encoder",
        "wall s",
        "train-step s",
        "tokens/s",
        f"× {first}",
        "steps",
        *names,
    ]
    lines = [
        f"Experiment `{experiment}`, same seed and data for every encoder.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        cells = [
            row["encoder"],
            f"{row['wall_s']:.1f}",
            f"{row['train_step_s']:.1f}",
            f"{row['tokens_per_s']:,.0f}",
            f"{row['speed_vs_first']:.2f}",
            str(row["global_step"]),
            *(f"{row['metrics'][n]:.4g}" if n in row["metrics"] else "" for n in names),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- entry point -------------------------------------------------------------------------


def _as_dataclass(value: Any, cls: type) -> Any:
    """``value`` (a ``cls``, a typed node, a dict or an untyped node) as a ``cls`` instance.

    A node already typed as ``cls`` (Hydra's, from ``compare.yaml``) is converted as it is:
    merging it into ``cls``'s defaults again would put back what the command line deleted
    (``'~training.encoders.autograd'``). For a plain mapping, a mapping-valued key given
    (``encoders``) replaces the default mapping instead of being merged into it.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, DictConfig) and OmegaConf.get_type(value) is cls:
        return OmegaConf.to_object(value)
    merged = OmegaConf.merge(OmegaConf.structured(cls), value)
    given = value if isinstance(value, DictConfig) else OmegaConf.create(value)
    for key in given:
        node = given._get_node(key)
        if isinstance(node, DictConfig) and not OmegaConf.is_missing(given, key):
            if OmegaConf.get_type(merged, key) in (dict, None) or not is_structured(
                merged._get_node(key)
            ):
                merged[key] = node
    return OmegaConf.to_object(merged)


def is_structured(node: Any) -> bool:
    """Whether ``node`` is a config node typed by a dataclass (merged key by key)."""
    return isinstance(node, DictConfig) and OmegaConf.get_type(node) not in (dict, None)


def compare(cfg: DictConfig) -> dict:
    """Run the mode ``cfg`` names; returns its report."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if cfg.mode == "numerics":
        return run_numerics(cfg.numerics, cfg.output_dir)
    if cfg.mode == "training":
        return run_training(cfg.training, cfg.output_dir)
    raise ValueError(f"mode must be 'numerics' or 'training', got {cfg.mode!r}")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="compare")
def _hydra_main(cfg: DictConfig) -> None:
    result = compare(cfg)
    if cfg.mode == "numerics" and not result["passed"]:
        sys.stderr.write("seqmodels-compare: differences above the tolerance\n")
        raise SystemExit(1)


def main() -> None:
    """Console entry point ``seqmodels-compare``."""
    register_compare_schema()
    run_main(_hydra_main)


if __name__ == "__main__":
    main()


__all__ = [
    "CompareConfig",
    "NumericsOptions",
    "TrainingOptions",
    "compare",
    "compose_train",
    "run_numerics",
    "run_training",
]
