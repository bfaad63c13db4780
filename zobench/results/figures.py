"""The report's matplotlib figures for one (suite, model, task) group of records.

Each function takes the group's rows (from load_results) and their records (the rows'
``record`` column, as the reader read them: no file is reopened here), and returns a
Figure; html_report embeds them. Usage: ``fig = memory_figure(rows)``.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on CI or a GPU runner; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from zobench.results.records import FLOOR, OK_STATUSES, mean_over_seeds, timed_step_times  # noqa: E402

MIB = 1024 ** 2
EVENT_STYLE = dict(marker="x", color="red", s=60, zorder=5, linewidths=2)


def _shown(label: str) -> str:
    """A label as matplotlib text, literally: a `$` would start mathtext (and an odd one fails to draw)."""
    return str(label).replace("$", r"\$")


def _by_label(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Method labels in record order, the floor first (it is the reference in every figure)."""
    labels = list(dict.fromkeys(rows.label))
    labels.sort(key=lambda label: label != FLOOR)
    return [(label, rows[rows.label == label]) for label in labels]


def _mean(group: pd.DataFrame, column: str) -> float:
    """The method's figure: the mean over its finished seeds (an oom cell's reached peak is no bar)."""
    return mean_over_seeds(group[group.status.isin(OK_STATUSES)][column])


def memory_figure(rows: pd.DataFrame) -> Figure:
    """Peak memory per method (mean over seeds), the floor's level drawn across."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    groups = _by_label(rows)
    peaks = [_mean(g, "peak_mem_bytes") / MIB for _, g in groups]
    colours = ["grey" if label == FLOOR else "tab:blue" for label, _ in groups]
    ax.bar([_shown(label) for label, _ in groups], peaks, color=colours)
    floor = [p for (label, _), p in zip(groups, peaks) if label == FLOOR]
    if floor and math.isfinite(floor[0]):
        ax.axhline(floor[0], color="grey", linestyle="--", label="inference floor")
        ax.legend(loc="lower right")
    ax.set_ylabel("peak memory (MiB)")
    ax.set_title("Peak memory per method")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (less memory and more accuracy), by memory."""
    front, best = [], -math.inf
    for mem, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((mem, acc))
            best = acc
    return front


def pareto_figure(rows: pd.DataFrame) -> Figure:
    """Memory vs test accuracy per method, with the Pareto front (lower memory, higher accuracy).

    The floor is drawn as the reference but kept off the front: it never trains.
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    points = []
    for label, group in _by_label(rows):
        mem, acc = _mean(group, "peak_mem_bytes") / MIB, _mean(group, "accuracy")
        if math.isfinite(mem) and math.isfinite(acc):
            if label != FLOOR:
                points.append((mem, acc))
            ax.scatter([mem], [acc], color="grey" if label == FLOOR else "tab:blue", zorder=3)
            ax.annotate(_shown(label), (mem, acc), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = pareto_front(points)
    if front:
        ax.step([m for m, _ in front], [a for _, a in front], where="post", color="tab:green",
                linestyle="--", label="Pareto front")
        ax.legend(loc="lower right")
    ax.set_xlabel("peak memory (MiB)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Memory vs accuracy")
    fig.tight_layout()
    return fig


def loss_figure(rows: pd.DataFrame, records: dict[str, dict[str, Any]]) -> Figure:
    """Training loss per step for every cell; divergence events as red crosses on their step.

    Events before training (``restore_drift``, step -1) sit at step 0; eval rebounds at the
    step whose evaluation saw them.
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    events_drawn = 0
    for label, group in _by_label(rows):
        for row in group.itertuples():
            record = records.get(row.cell_id, {})
            losses = [math.nan if v is None else v for v in record.get("series", {}).get("loss", [])]
            if not losses:
                continue
            name = _shown(label) if len(group) == 1 else f"{_shown(label)} s{row.seed}"
            (line,) = ax.plot(range(1, len(losses) + 1), losses, label=name)
            xs, ys = [], []
            for event in record.get("divergence", []):
                step = min(max(int(event.get("step", 0)), 0), len(losses))
                xs.append(step)
                finite = [v for v in losses if math.isfinite(v)]
                at = losses[step - 1] if step >= 1 and math.isfinite(losses[step - 1]) else max(finite, default=0.0)
                ys.append(at)
            if xs:
                ax.scatter(xs, ys, **EVENT_STYLE, label=f"divergence events ({name})")
                events_drawn += len(xs)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Loss curves" + (f" ({events_drawn} divergence events marked ×)" if events_drawn else ""))
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def step_time_figure(rows: pd.DataFrame, records: dict[str, dict[str, Any]]) -> Figure:
    """Per-step time per method as box plots of the timed steps (warm-up excluded), seeds pooled."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    labels, samples = [], []
    for label, group in _by_label(rows):
        times: list[float] = []
        for row in group.itertuples():
            times += [t * 1000 for t in timed_step_times(records.get(row.cell_id, {}))]
        if times:
            labels.append(_shown(label))
            samples.append(times)
    if samples:
        ax.boxplot(samples, tick_labels=labels)
    ax.set_ylabel("step time (ms)")
    ax.set_yscale("log")  # the floor and first-order methods differ by orders of magnitude
    ax.set_title("Step time per method (timed steps)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
