"""Records → a Markdown comparison table per suite, with every method's ratio to the floor.

Reads only the stored records (through load_results), never the running code.
Usage: ``print(markdown_report(load_results("results")))``.
"""

from __future__ import annotations

import math

import pandas as pd

from zobench.results.formatting import human_bytes
from zobench.results.records import FLOOR, OK_STATUSES


def _mean_sd(values: pd.Series, fmt: str = "{:.3f}") -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return fmt.format(values.iloc[0])
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std())}"


def _ratio(value: float, floor: float | None) -> str:
    if floor is None or value is None or not math.isfinite(value) or not floor or not math.isfinite(floor):
        return "-"
    return f"{value / floor:.2f}×"


def _to_target(group: pd.DataFrame) -> str:
    """Mean forwards to the suite's target over the seeds that reached it, and how many did."""
    if not group.target_metric.notna().any():
        return "-"
    reached = group.get("forwards_to_target", pd.Series(dtype=float)).dropna().astype(float)
    if reached.empty:
        return f"not reached (0/{len(group)})"
    return f"{reached.mean():,.0f} ({len(reached)}/{len(group)})"


def _mean_forwards_per_step(group: pd.DataFrame) -> float | None:
    """Forward passes per step over the whole run: AdaZeta's Q grows, so the first step's count misleads."""
    done = group[group.steps_done.fillna(0).astype(float) > 0]
    if done.forwards_total.notna().any():
        return float((done.forwards_total.astype(float) / done.steps_done.astype(float)).mean())
    known = group.forwards_per_step.dropna()
    return float(known.iloc[0]) if len(known) else None


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (suite, model, task, method label): means over seeds and status counts."""
    rows = []
    for (suite, model, task, label), group in df.groupby(["suite", "model", "task", "label"], sort=False):
        ok = group[group.status.isin(OK_STATUSES)]
        rows.append({
            "suite": suite, "model": model, "task": task, "label": label, "method": group.method.iloc[0],
            "synthetic": bool(group.synthetic.fillna(False).any()),
            "seeds": len(group), "statuses": ", ".join(f"{s} {n}" for s, n in group.status.value_counts().items()),
            "peak_mem_bytes": ok.peak_mem_bytes.astype(float).mean() if len(ok) else float("nan"),
            "peak_mem_source": ", ".join(sorted(set(ok.peak_mem_source.dropna()))) or "-",
            # What an out-of-memory cell reached before it failed: the point of running it.
            "oom_peak_mem_bytes": group[group.status == "oom"].peak_mem_bytes.astype(float).max(),
            "step_time_s": ok.step_time_s.astype(float).mean() if len(ok) else float("nan"),
            "forwards_per_step": _mean_forwards_per_step(group),
            "step0": _mean_sd(ok.step0_accuracy.astype(float)), "final": _mean_sd(ok.accuracy.astype(float)),
            "best": _mean_sd(ok.best_accuracy.astype(float)),
            "dev": _mean_sd(ok.dev_accuracy.astype(float)),
            "forwards_to_target": _to_target(group),
            "divergence_events": int(group.divergence_events.fillna(0).sum()),
            "divergence_rate": float((group.divergence_events.fillna(0) > 0).mean()),
            "trainable_params": float(group.trainable_params.dropna().iloc[0]) if group.trainable_params.notna().any() else math.nan,
            "contended": int(ok.contended.eq(True).sum()),  # None: recorded before the flag existed
        })
    return pd.DataFrame(rows)


COLUMNS = ["method", "status", "peak mem", "× floor", "step time", "× floor ", "fwd/step", "fwd to target",
           "step-0 acc", "final acc", "best-on-dev acc", "dev acc", "div. events (rate)", "trainable"]


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def literal(value: object) -> str:
    """A table cell that renders as its text: one line, ``|`` and ``$`` escaped (labels come from users)."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("$", "\\$")


def _count(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def table(group: pd.DataFrame) -> list[dict[str, str]]:
    """The comparison rows of one (suite, model, task) summary group, formatted, keyed by COLUMNS."""
    floor = group[group.method == FLOOR]
    floor_mem = floor.peak_mem_bytes.iloc[0] if len(floor) and _finite(floor.peak_mem_bytes.iloc[0]) else None
    floor_time = floor.step_time_s.iloc[0] if len(floor) and _finite(floor.step_time_s.iloc[0]) else None
    rows = []
    for r in group.itertuples():
        peak = human_bytes(r.peak_mem_bytes) if _finite(r.peak_mem_bytes) else "-"
        if not _finite(r.peak_mem_bytes) and _finite(r.oom_peak_mem_bytes):
            peak = f"oom at {human_bytes(r.oom_peak_mem_bytes)}"
        rows.append(dict(zip(COLUMNS, [
            r.label, r.statuses, peak,
            _ratio(r.peak_mem_bytes, floor_mem),
            (f"{r.step_time_s * 1000:.0f} ms" + (" †" if r.contended else "")) if _finite(r.step_time_s) else "-",
            _ratio(r.step_time_s, floor_time), _count(r.forwards_per_step),
            r.forwards_to_target, r.step0, r.final, r.best, r.dev, f"{r.divergence_events} ({r.divergence_rate:.0%})",
            f"{int(r.trainable_params):,}" if _finite(r.trainable_params) else "-"])))
    return rows


def groups(summary: pd.DataFrame):
    """(heading, summary rows) per suite × model × task, the heading marking synthetic tasks."""
    for (suite, model, task), group in summary.groupby(["suite", "model", "task"], sort=False):
        synthetic = " (SYNTHETIC task)" if group.synthetic.any() else ""
        yield f"{suite}: {model} on {task}{synthetic}", group


FOOTNOTE = ("Accuracy is on the test split (F1 for generation tasks); mean ± sd over seeds where there are several. "
            "Best-on-dev: the test score of the checkpoint selected on dev (the cell's select_on); "
            "fwd/step: forward passes per step over the run. "
            "Forwards to target: mean over the seeds that reached the suite's target (how many did).")


def markdown_report(df: pd.DataFrame) -> str:
    if df.empty:
        return "No records found.\n"
    out = []
    for heading, group in groups(summarise(df)):
        out.append(f"## {literal(heading)}\n")
        out.append("| " + " | ".join(c.strip() for c in COLUMNS) + " |")
        out.append("|" + "---|" * len(COLUMNS))
        out += ["| " + " | ".join(literal(v) for v in row.values()) + " |" for row in table(group)]
        sources = ", ".join(sorted(set(group.peak_mem_source) - {"-"}))
        contended = (" † Timing from a contended cell: other processes kept the machine's CPUs or the cell's GPUs "
                     "busy while it trained (the record's contention); rerun it on a quiet machine."
                     if group.contended.any() else "")
        out.append(f"\nPeak memory source: {sources or '-'}. {FOOTNOTE}{contended}\n")
    return "\n".join(out) + "\n"
