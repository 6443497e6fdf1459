"""The vanishing-gradient results, from one command: a sweep and its table.

``make research`` (``python -m seqmodels.diagnostics.research``) runs ``seqmodels-train``
multiruns of the presets ``experiment=research_adding`` (adding problem, ``data.length``
T ∈ {50, 100, 200}) and ``experiment=research_copy`` (copying memory, ``data.delay``
∈ {20, 50}), one per task and cell, with one budget for every cell:

* ``tanh``: ``model/encoder=elman`` (tanh Elman RNN, nn.RNN's initialisation),
* ``irnn``: ``model/encoder=irnn`` (ReLU, identity initialisation; every job clips the
  gradient norm at 1),
* ``lstm``: ``model/encoder=lstm`` with ``model.encoder.init=forget_bias`` (the cell's own
  overrides, :data:`CELL_OVERRIDES`), ``gru``: ``model/encoder=gru``,
* ``lnlstm``: ``model/encoder=lnlstm`` (layer-normalised LSTM, Ba et al. 2016),
* ``indrnn``: ``model/encoder=indrnn`` (ReLU IndRNN, Li et al. 2018),

then writes one table (``research.md`` and ``research.json`` in the output directory):
final validation loss (best checkpoint) against each task's exact baseline (adding:
predicting 1 scores MSE 1/6 = 0.167; copying: the memoryless 10 ln 8 / (T + 20)), and the
gradient ratio ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ of the first training batch at initialisation
(recorded by :class:`~seqmodels.diagnostics.GradientDiagnostics` before the first update),
with each job's wall time. Failed jobs are rows too, with their error.

The jobs run as subprocesses (this module sits below the command line and does not import
it); extra arguments are Hydra overrides for every job, e.g. a shorter budget::

    python -m seqmodels.diagnostics.research --cells tanh,lstm --adding 50 --copy "" \\
        trainer.max_epochs=1 data.n_train=640
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Research cell name -> the encoder option that builds it.
CELLS = {
    "tanh": "elman",
    "irnn": "irnn",
    "lstm": "lstm",
    "gru": "gru",
    "lnlstm": "lnlstm",
    "indrnn": "indrnn",
}
#: Research cell name -> its own overrides, after the preset's and before the command
#: line's (which win): what makes the cell the one the literature trains. The presets stay
#: encoder-agnostic; a key only one encoder takes belongs here.
CELL_OVERRIDES: dict[str, tuple[str, ...]] = {
    "lstm": ("model.encoder.init=forget_bias",),  # Gers et al. 2000; Jozefowicz et al. 2015
}
#: Task -> (experiment preset, the swept data key, default values).
TASKS = {
    "adding": ("research_adding", "data.length", (50, 100, 200)),
    "copy_memory": ("research_copy", "data.delay", (20, 50)),
}


def baseline(task: str, t: int) -> float:
    """The exact loss of the best memoryless predictor of ``task`` at length/delay ``t``."""
    if task == "adding":
        return 1.0 / 6.0  # predict the mean of the sum, 1: E[(s - 1)^2] = 2 Var(U) = 1/6
    return 10.0 * math.log(8.0) / (t + 20)  # copying: 10 symbols of 8 at chance, T + 20 steps


def sweep_command(
    task: str,
    cells: Sequence[str],
    values: Sequence[int],
    sweep_dir: Path,
    overrides: Sequence[str] = (),
) -> list[str]:
    """The ``seqmodels-train -m`` command of one task's sweep over ``cells``.

    The cells' own overrides (:data:`CELL_OVERRIDES`) come before ``overrides``, so the
    command line wins; cells that share one multirun must share their overrides.
    """
    experiment, key, _ = TASKS[task]
    encoders = ",".join(CELLS[c] for c in cells)
    own = {CELL_OVERRIDES.get(c, ()) for c in cells}
    if len(own) > 1:
        raise ValueError(f"cells {list(cells)} have different overrides: one sweep per cell")
    return [
        sys.executable, "-m", "seqmodels.cli.train", "-m",
        f"experiment={experiment}",
        f"model/encoder={encoders}",
        f"{key}={','.join(str(v) for v in values)}",
        f"hydra.sweep.dir={sweep_dir}",
        *(own.pop() if own else ()),
        *overrides,
    ]  # fmt: skip


def _override(overrides: Sequence[str], key: str) -> str | None:
    for item in overrides:
        name, _, value = item.partition("=")
        if name == key:
            return value
    return None


def gradient_ratio(run_dir: Path) -> float | None:
    """‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ of the first recorded step (at initialisation), if recorded."""
    found = sorted(Path(run_dir).rglob("gradient_diagnostics.csv"))
    if not found:
        return None
    with open(found[0], newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    norms = [float(v) for k, v in rows[0].items() if k.startswith("h_") and v not in ("", "nan")]
    if not norms or norms[-1] == 0:
        return None
    return norms[0] / norms[-1]


def _jobs(sweep_dir: Path) -> list[tuple[str | None, dict[str, Any]]]:
    """(cell, job) of every multirun in ``sweep_dir``: its own and one per cell folder."""
    found = []
    for summary in [
        sweep_dir / "sweep_summary.json",
        *sorted(sweep_dir.glob("*/sweep_summary.json")),
    ]:
        if summary.is_file():
            cell = summary.parent.name if summary.parent != sweep_dir else None
            found += [(cell, job) for job in json.loads(summary.read_text())["jobs"]]
    return found


def collect(task: str, sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job of a task's finished sweeps (failed jobs included).

    ``sweep_dir`` holds one multirun per cell (``<sweep_dir>/<cell>/``, as :func:`run`
    writes it) or one multirun of several cells; rows are in :data:`CELLS` order, then T.
    """
    _, key, _ = TASKS[task]
    names = {encoder: cell for cell, encoder in CELLS.items()}
    rows = []
    for cell, job in _jobs(Path(sweep_dir)):
        overrides = job.get("overrides", [])
        encoder = _override(overrides, "model/encoder") or "?"
        t = int(_override(overrides, key) or 0)
        run_dir = Path(job["run_dir"])
        row: dict[str, Any] = {
            "task": task,
            "T": t,
            "cell": cell if cell in CELLS else names.get(encoder, encoder),
            "status": job.get("status"),
            "baseline": baseline(task, t),
            "val_loss": None,
            "grad_ratio": gradient_ratio(run_dir),
            "wall_s": None,
            "steps": None,
            "run_dir": str(run_dir),
        }
        result = run_dir / "summary.json"
        if result.is_file():
            data = json.loads(result.read_text())
            row["val_loss"] = _as_float(data.get("metrics", {}).get("val/loss"))
            row["wall_s"] = data.get("wall_time_s")
            row["steps"] = data.get("global_step", data.get("steps"))
        if job.get("error"):
            row["error"] = job["error"]
        rows.append(row)
    order = {cell: i for i, cell in enumerate(CELLS)}
    return sorted(rows, key=lambda r: (order.get(r["cell"], len(order)), r["T"]))


def _as_float(value: Any) -> float | None:
    """A metric as a float: summaries write a non-finite one as text (``"nan"``)."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def verdict(row: dict[str, Any]) -> str:
    """``learned`` below 90 % of the baseline (adding: 50 %); on copying ``below baseline``
    below 97 % (a start on remembering); ``at baseline`` up to 105 % (on adding the
    validation set's own MSE of predicting 1 scatters a few % around 1/6); else
    ``above baseline`` (not even the memoryless predictor yet)."""
    loss = row.get("val_loss")
    if loss is None or not math.isfinite(loss):
        return "FAILED" if row.get("status") != "COMPLETED" else "no loss"
    share = 0.5 if row["task"] == "adding" else 0.9
    if loss < share * row["baseline"]:
        return "**learned**"
    if row["task"] != "adding" and loss < 0.97 * row["baseline"]:
        return "below baseline"
    return "at baseline" if loss <= 1.05 * row["baseline"] else "above baseline"


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| task | T | cell | val loss | baseline | val / baseline | verdict "
        "| ‖∂L/∂h_1‖/‖∂L/∂h_T‖ at init | steps | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {cell: i for i, cell in enumerate(CELLS)}
    for r in sorted(rows, key=lambda r: (r["task"], r["T"], order.get(r["cell"], 99))):
        loss, ratio = r.get("val_loss"), r.get("grad_ratio")
        fmt_loss = "—" if loss is None else f"{loss:.4f}"
        rel = "—" if loss is None else f"{loss / r['baseline']:.2f}"
        fmt_ratio = "—" if ratio is None else f"{ratio:.1e}"
        wall = "—" if r.get("wall_s") is None else f"{r['wall_s']:.0f}"
        lines.append(
            f"| {r['task']} | {r['T']} | {r['cell']} | {fmt_loss} | {r['baseline']:.3f} | {rel} "
            f"| {verdict(r)} | {fmt_ratio} | {r.get('steps') or '—'} | {wall} |"
        )
    return "\n".join(lines)


def run(
    out: Path,
    cells: Sequence[str] = tuple(CELLS),
    values: dict[str, Sequence[int]] | None = None,
    overrides: Sequence[str] = (),
    threads: int | None = 1,
) -> list[dict[str, Any]]:
    """Run each task's sweeps (one multirun per cell, one after the other), write and
    return the table's rows. ``threads``: OMP/MKL threads of every job (``None``: as the
    environment says); one is the fastest for these small models on a shared CPU."""
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        raise ValueError(f"unknown cells {unknown}; expected some of {list(CELLS)}")
    values = {task: spec[2] for task, spec in TASKS.items()} if values is None else values
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    timings = {}
    env = os.environ.copy()
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    for task, task_values in values.items():
        if not task_values:
            continue
        sweep_dir = out / task
        for cell in cells:
            command = sweep_command(task, [cell], task_values, sweep_dir / cell, overrides)
            print("[research]", " ".join(command[2:]), flush=True)
            started = time.perf_counter()
            sweep_dir.mkdir(exist_ok=True)
            with open(sweep_dir / f"{cell}.log", "w") as log:
                subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            timings[f"{task}/{cell}"] = round(time.perf_counter() - started, 1)
        rows += collect(task, sweep_dir)
    table = to_markdown(rows)
    (out / "research.md").write_text(table + "\n")
    report = {"cells": list(cells), "values": values, "overrides": list(overrides),
              "threads": threads,
              "cell_overrides": {c: list(CELL_OVERRIDES.get(c, ())) for c in cells},
              "sweep_wall_s": timings, "total_wall_s": round(sum(timings.values()), 1),
              "rows": rows}  # fmt: skip
    (out / "research.json").write_text(json.dumps(report, indent=2))
    print(table)
    return rows


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default=None, help="output directory (default logs/research/<time>)"
    )
    parser.add_argument("--cells", default=",".join(CELLS), help="of " + ",".join(CELLS))
    parser.add_argument("--adding", default="50,100,200", help="adding lengths T")
    parser.add_argument("--copy", default="20,50", help="copying delays")
    parser.add_argument(
        "--threads", type=int, default=1, help="OMP/MKL threads per job (0: the environment's)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job")
    args = parser.parse_args(argv)
    out = args.out or Path(os.environ.get("SEQMODELS_LOG_DIR", "logs")) / "research" / (
        time.strftime("%Y-%m-%d_%H-%M-%S")
    )
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    values = {"adding": _ints(args.adding), "copy_memory": _ints(args.copy)}
    rows = run(Path(out), cells, values, args.overrides, threads=args.threads or None)
    print(f"[research] table: {Path(out) / 'research.md'}")
    if any(r.get("status") != "COMPLETED" for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
