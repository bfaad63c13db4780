"""Records → a Markdown comparison table per suite, with every method's ratio to the floor.

Reads only the stored records (through load_results), never the running code.
Usage: ``print(markdown_report(load_results("results")))``.
"""

from __future__ import annotations

import math

import pandas as pd

from zobench.progress import human_bytes

FLOOR = "floor"


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


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (suite, model, task, method label): means over seeds and status counts."""
    rows = []
    for (suite, model, task, label), group in df.groupby(["suite", "model", "task", "label"], sort=False):
        ok = group[group.status.isin(["ok", "diverged"])]
        rows.append({
            "suite": suite, "model": model, "task": task, "label": label, "method": group.method.iloc[0],
            "synthetic": bool(group.synthetic.fillna(False).any()),
            "seeds": len(group), "statuses": ", ".join(f"{s} {n}" for s, n in group.status.value_counts().items()),
            "peak_mem_bytes": ok.peak_mem_bytes.astype(float).mean() if len(ok) else float("nan"),
            "peak_mem_source": ", ".join(sorted(set(ok.peak_mem_source.dropna()))) or "-",
            # What an out-of-memory cell reached before it failed: the point of running it.
            "oom_peak_mem_bytes": group[group.status == "oom"].peak_mem_bytes.astype(float).max(),
            "step_time_s": ok.step_time_s.astype(float).mean() if len(ok) else float("nan"),
            "forwards_per_step": group.forwards_per_step.dropna().iloc[0] if group.forwards_per_step.notna().any() else None,
            "step0": _mean_sd(ok.step0_accuracy.astype(float)), "final": _mean_sd(ok.accuracy.astype(float)),
            "dev": _mean_sd(ok.dev_accuracy.astype(float)),
            "divergence_events": int(group.divergence_events.fillna(0).sum()),
            "divergence_rate": float((group.divergence_events.fillna(0) > 0).mean()),
            "trainable_params": group.trainable_params.dropna().iloc[0] if group.trainable_params.notna().any() else None,
        })
    return pd.DataFrame(rows)


def markdown_report(df: pd.DataFrame) -> str:
    if df.empty:
        return "No records found.\n"
    summary = summarise(df)
    out = []
    for (suite, model, task), group in summary.groupby(["suite", "model", "task"], sort=False):
        floor = group[group.method == FLOOR]
        floor_mem = floor.peak_mem_bytes.iloc[0] if len(floor) else None
        floor_time = floor.step_time_s.iloc[0] if len(floor) else None
        synthetic = " (SYNTHETIC task)" if group.synthetic.any() else ""
        out.append(f"## {suite}: {model} on {task}{synthetic}\n")
        out.append("| method | status | peak mem | × floor | step time | × floor | fwd/step | step-0 acc | final acc | dev acc | div. events (rate) | trainable |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in group.itertuples():
            step_ms = f"{r.step_time_s * 1000:.0f} ms" if math.isfinite(r.step_time_s) else "-"
            peak = human_bytes(r.peak_mem_bytes) if math.isfinite(r.peak_mem_bytes) else "-"
            if not math.isfinite(r.peak_mem_bytes) and math.isfinite(r.oom_peak_mem_bytes):
                peak = f"oom at {human_bytes(r.oom_peak_mem_bytes)}"
            trainable = f"{int(r.trainable_params):,}" if r.trainable_params is not None else "-"
            fwd = int(r.forwards_per_step) if r.forwards_per_step is not None else "-"
            out.append(f"| {r.label} | {r.statuses} | {peak} | {_ratio(r.peak_mem_bytes, floor_mem)} | {step_ms} | "
                       f"{_ratio(r.step_time_s, floor_time)} | {fwd} | {r.step0} | {r.final} | {r.dev} | "
                       f"{r.divergence_events} ({r.divergence_rate:.0%}) | {trainable} |")
        sources = ", ".join(sorted(set(group.peak_mem_source) - {"-"}))
        out.append(f"\nPeak memory source: {sources or '-'}. Accuracy is on the test split; "
                   f"mean ± sd over seeds where there are several.\n")
    return "\n".join(out) + "\n"
