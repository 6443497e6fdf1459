"""``seqmodels-bench``: seqmodels' recurrent modules against torch's, side by side.

``cell=elman`` (default): ``ElmanRNN`` against ``torch.nn.RNN``; ``cell=lstm`` /
``cell=gru``: ``seqmodels.LSTM`` / ``GRU`` against ``nn.LSTM`` / ``nn.GRU``. Every backend is
a row (``autograd``, ``bptt``, ``torch``, ``auto``; for the gated cells also the same cells
stepped as a plain ``RecurrentCell`` loop, "cell loop"); ``implementations=[bptt,torch]``
picks some. ``cell=user`` (the user cell of docs/cells.md), ``cell=lnlstm`` / ``lngru`` /
``indrnn`` (the research modules) run on the engine and on the step loop, beside torch's
closest module.

A Hydra entry point like the other commands (config ``bench.yaml``, typed by
:class:`BenchConfig`: a misspelt key fails at start). The measurement itself is
:mod:`seqmodels.diagnostics.speed`; the implementations come from the one registry,
:mod:`seqmodels.diagnostics.implementations`. The table is printed and written with the
full JSON report to the run directory (``logs/bench/<time>/``; ``SEQMODELS_LOG_DIR`` moves
``logs/``), and also to ``json=`` / ``markdown=`` when given.

Usage::

    seqmodels-bench                                    # all configurations, 2 threads
    seqmodels-bench configs=[A,F] threads=1 rounds=15 json=bench.json
    seqmodels-bench quick=true                         # smoke test: tiny sizes
    seqmodels-bench cell=lstm                          # seqmodels.LSTM against nn.LSTM
    seqmodels-bench cell=gru implementations=[bptt,torch,auto]
    seqmodels-bench cell=lnlstm configs=[A,B]          # LayerNormLSTM, engine and step loop
    seqmodels-bench cell=lstm weight_dropout=0.5       # each row again, regularised (+reg)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from seqmodels.diagnostics.implementations import CELLS
from seqmodels.diagnostics.speed import CONFIGS, run, to_markdown
from seqmodels.experiment.entry import CONFIG_PATH, run_main


@dataclass
class BenchConfig:
    cell: str = "elman"  # elman|lstm|gru|user|lnlstm|lngru|indrnn (diagnostics.implementations)
    # the implementations beside the reference (null: all of the cell's; e.g. [bptt, torch])
    implementations: list[str] | None = None
    # any > 0: each seqmodels row again with these regularisers ("<row> +reg")
    weight_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    compile: bool = False  # each bptt and auto row again under torch.compile ("<row> +compile")
    configs: list[str] = field(default_factory=lambda: list(CONFIGS))  # from A-F
    threads: int = 2  # torch.set_num_threads
    rounds: int | None = None  # timed rounds, median reported (null: 9, quick: 2)
    warmup: int | None = None  # untimed calls per implementation (null: 3, quick: 1)
    quick: bool = False  # tiny sizes and few rounds: a smoke test, meaningless numbers
    device: str | None = None  # null: cuda if available, else cpu
    dtype: str = "float32"  # float32 | float64
    memory: bool = True  # profile the peak memory of a training step
    json: str | None = None  # also write the full report here
    markdown: str | None = None  # also write the table here
    output_dir: str = MISSING  # the run directory: bench.json and bench.md


def register_bench_schema() -> None:
    ConfigStore.instance().store(name="bench_schema", node=BenchConfig)


def bench(cfg: DictConfig | BenchConfig) -> dict:
    """Benchmark what ``cfg`` names; print the table, write it and the report; return it."""
    quick = bool(cfg.quick)
    report = run(
        [str(c).strip().upper() for c in cfg.configs],
        int(cfg.threads),
        cfg.rounds or (2 if quick else 9),
        cfg.warmup or (1 if quick else 3),
        quick,
        cfg.device,
        cfg.dtype,
        bool(cfg.memory),
        str(cfg.cell),
        None if cfg.implementations is None else [str(n) for n in cfg.implementations],
        {k: float(cfg[k]) for k in ("weight_dropout", "recurrent_dropout", "zoneout") if cfg[k]},
        bool(cfg.compile),
    )
    table = to_markdown(report)
    print(table)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = [(out / "bench.json", out / "bench.md"), (cfg.json, cfg.markdown)]
    for json_path, md_path in targets:
        if json_path:
            Path(json_path).write_text(json.dumps(report, indent=2))
        if md_path:
            Path(md_path).write_text(table + "\n")
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="bench")
def _hydra_main(cfg: DictConfig) -> None:
    if cfg.cell not in CELLS:
        sys.stderr.write(
            f"seqmodels-bench: unknown cell {cfg.cell!r}; expected one of {sorted(CELLS)}\n"
        )
        raise SystemExit(2)
    unknown = [c for c in cfg.configs if str(c).strip().upper() not in CONFIGS]
    if unknown:
        sys.stderr.write(
            f"seqmodels-bench: unknown configuration(s) {list(unknown)}; "
            f"expected some of {sorted(CONFIGS)}\n"
        )
        raise SystemExit(2)
    bench(cfg)


def main() -> None:
    """Console entry point ``seqmodels-bench``."""
    register_bench_schema()
    run_main(_hydra_main)


if __name__ == "__main__":
    main()
