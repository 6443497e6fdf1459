"""Plots people expect from a run, as matplotlib figures and PNG files.

* :func:`gradient_heatmap`: ‖∂L/∂h_t‖, training step × time step, log colour scale;
* :func:`learning_curves`: every metric of a Lightning ``metrics.csv``, one panel per name;
* :func:`overlay_learning_curves`: several runs' curves of the same metrics, overlaid;
* :func:`confusion_matrix`: torchmetrics' own plot of a multiclass confusion matrix;
* :func:`attention_map`: decoder step × source step attention weights.

Matplotlib is switched to the non-interactive Agg backend on import (no display is needed,
and none exists on a server or in CI), unless a notebook already chose an inline backend.

Example::

    >>> import torch
    >>> from seqmodels.diagnostics.plots import gradient_heatmap
    >>> fig = gradient_heatmap(torch.rand(4, 10) + 1e-3, steps=[0, 10, 20, 30])
    >>> fig.axes[0].get_xlabel()
    'time step t'
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

if "inline" not in matplotlib.get_backend().lower():
    matplotlib.use("Agg")  # before pyplot: no display here, and never open windows

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402


def save_figure(fig: Figure, path: str | os.PathLike, close: bool = True) -> Path:
    """Write ``fig`` as PNG (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if close:
        plt.close(fig)
    return path


def gradient_heatmap(
    norms: Tensor,
    steps: Sequence[int] | None = None,
    title: str = "‖∂L/∂h_t‖",
    ax=None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """Heat map of ``norms`` ``(recorded steps, T)``: rows are training steps, columns time.

    NaN (a shorter batch) and zeros (no gradient reached that step) are left blank;
    the colour scale is logarithmic so decay over orders of magnitude reads as a gradient
    of colour rather than one bright column.
    """
    values = torch.as_tensor(norms, dtype=torch.float64).clone()
    values[~(values > 0)] = math.nan  # LogNorm cannot show 0; NaN stays blank
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.6))
    else:
        fig = ax.figure
    finite = values[torch.isfinite(values)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.numel() else 1e-8)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.numel() else 1.0)
    hi = max(hi, lo * 10)
    image = ax.imshow(
        values.numpy(),
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        norm=LogNorm(vmin=lo, vmax=hi),
        cmap="viridis",
    )
    ax.set_xlabel("time step t")
    ax.set_ylabel("training step")
    if steps is not None and len(steps):
        ticks = sorted(set(int(i) for i in torch.linspace(0, len(steps) - 1, 6).round()))
        ax.set_yticks(ticks, [str(steps[i]) for i in ticks])
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="‖∂L/∂h_t‖ (log scale)")
    return fig


def read_metrics_csv(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Lightning ``CSVLogger`` ``metrics.csv`` -> ``{metric: [(step, value), ...]}``.

    Rows hold one logging call each (blank where a metric was not logged); ``epoch`` and
    ``step`` are the x axes, not metrics.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                try:
                    series.setdefault(key, []).append((step, float(value)))
                except ValueError:
                    continue
    return series


def _metric_groups(names: Sequence[str]) -> dict[str, list[str]]:
    """Group ``train/loss``, ``val/loss``, ``train/loss_step`` ... by what follows the stage."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        stage, _, metric = name.partition("/")
        key = (metric or stage).removesuffix("_step").removesuffix("_epoch")
        groups.setdefault(key, []).append(name)
    return groups


def learning_curves(
    metrics: str | os.PathLike | Mapping[str, list[tuple[int, float]]],
    names: Sequence[str] | None = None,
) -> Figure:
    """One panel per metric (train and val of the same metric share a panel).

    ``metrics`` is a ``metrics.csv`` path or what :func:`read_metrics_csv` returns;
    ``names`` picks metrics (default: all but learning rates and timing columns).
    """
    series = read_metrics_csv(metrics) if isinstance(metrics, (str, os.PathLike)) else metrics
    return overlay_learning_curves({"": series}, names)


def overlay_learning_curves(
    runs: Mapping[str, str | os.PathLike | Mapping[str, list[tuple[int, float]]]],
    names: Sequence[str] | None = None,
) -> Figure:
    """The same metrics of several runs (``{label: metrics.csv or series}``), overlaid."""
    loaded = {
        label: read_metrics_csv(m) if isinstance(m, (str, os.PathLike)) else m
        for label, m in runs.items()
    }
    available = sorted({n for series in loaded.values() for n in series})
    if names is None:
        names = [n for n in available if not n.startswith(("lr", "time", "diagnostics/"))]
    groups = _metric_groups([n for n in names if n in available])
    if not groups:
        raise ValueError(f"no metric to plot; the runs logged {available}")
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    markers = "osD^vx"
    for ax, (group, members) in zip(axes.flat, groups.items(), strict=False):
        for i, (label, series) in enumerate(loaded.items()):
            for name in members:
                if name not in series:
                    continue
                xs, ys = zip(*series[name], strict=True)
                tag = f"{label} {name}".strip()
                style = "--" if name.startswith("val") else "-"
                # Runs that agree exactly would hide each other: earlier runs are drawn
                # wider and translucent, each with its own marker.
                ax.plot(
                    xs,
                    ys,
                    style,
                    label=tag,
                    linewidth=max(1.0, 4.5 - 1.5 * i),
                    alpha=0.55 if len(loaded) > 1 else 1.0,
                    marker=markers[i % len(markers)],
                    markevery=max(1, len(xs) // 12),
                    markersize=4,
                )
        ax.set_title(group)
        ax.set_xlabel("training step")
        if group in ("loss", "perplexity") and all(
            v > 0 for series in loaded.values() for n in members for _, v in series.get(n, [])
        ):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def confusion_matrix(
    preds: Tensor, target: Tensor, num_classes: int, labels: Sequence[str] | None = None
) -> Figure:
    """Multiclass confusion matrix (rows true, columns predicted), plotted by torchmetrics.

    Example::

        >>> import torch
        >>> fig = confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
        >>> len(fig.axes) >= 1
        True
    """
    from torchmetrics.classification import MulticlassConfusionMatrix

    metric = MulticlassConfusionMatrix(num_classes=num_classes)
    metric.update(preds.detach().cpu(), target.detach().cpu())
    fig, _ = metric.plot(labels=list(labels) if labels is not None else None)
    return fig


def attention_map(
    weights: Tensor,
    source_tokens: Sequence[str] | None = None,
    target_tokens: Sequence[str] | None = None,
    title: str = "attention weights",
) -> Figure:
    """``weights`` ``(U, S)``: one row per decoder step, one column per source step."""
    w = torch.as_tensor(weights, dtype=torch.float32).detach().cpu()
    fig, ax = plt.subplots(figsize=(0.4 * w.shape[1] + 2.5, 0.4 * w.shape[0] + 1.5))
    image = ax.imshow(w.numpy(), aspect="auto", cmap="Greys", vmin=0.0, vmax=1.0)
    ax.set_xlabel("source step")
    ax.set_ylabel("output step")
    if source_tokens is not None:
        ax.set_xticks(range(len(source_tokens)), list(source_tokens), rotation=90)
    if target_tokens is not None:
        ax.set_yticks(range(len(target_tokens)), list(target_tokens))
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    return fig
