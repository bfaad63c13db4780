"""The regression gate: two sets of records (BASE, HEAD) → a table of changes and a verdict.

Cells are matched by (suite, cell id). Seeds of one method label form one comparison
unit, so every metric is decided over the matched seeds:

- step time: per-step timings (warm-up excluded) pooled over seeds, Mann-Whitney U;
- the per-seed metrics (peak memory, error rate, divergence events, forwards to target):
  a paired t-test over the matched seeds when there are at least two, else the
  threshold alone.

A change is a regression when it is beyond the metric's threshold *and* the test (where
there is one) says it is not noise (p < alpha). Lower is better for every metric.

The gate fails closed: a cell BASE has and HEAD lacks (or has unreadable: the reader skips
it) is a regression unless ``allow_missing``, and two sides with no cell in common are bad
input (exit 2), never "no regression".
Usage: ``result = compare(load_results(base), load_results(head), thresholds_for)``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable

import pandas as pd

from zobench.api import UserError
from zobench.results.formatting import human_bytes
from zobench.results.records import OK_STATUSES, timed_step_times, unit_key
from zobench.results.store import RECORD_COLUMN, load_results
from zobench.results.thresholds import DEFAULT_THRESHOLDS, parse_thresholds

REGRESSION, IMPROVED, NOISE, SAME = "REGRESSION", "improved", "noise", "same"
MISSING_ALLOWED = "missing (allowed)"


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str  # the name used in thresholds
    column: str
    label: str
    relative: bool  # threshold is a fraction of BASE (else absolute, in the metric's unit); defaults: zobench.results.thresholds
    fmt: Callable[[float], str]
    delta: Callable[[float], str]  # a signed absolute change (used when not relative)


def _pct(v: float) -> str:
    return f"{v:.1%}"


def _rel(v: float) -> str:
    return f"{v:+.1%}"


METRICS = (
    Metric("peak_mem", "peak_mem_bytes", "peak memory", True, human_bytes, _rel),
    Metric("step_time", "step_time_s", "step time", True, lambda v: f"{v * 1000:.1f} ms", _rel),
    # error rate, not accuracy, so that lower is better here too; its threshold is in points
    Metric("error_rate", "error_rate", "error rate", False, _pct, lambda v: f"{v * 100:+.1f} pt"),
    Metric("divergence_events", "divergence_events", "divergence events", False, lambda v: f"{v:g}",
           lambda v: f"{v:+g}"),
    Metric("forwards_to_target", "forwards_to_target", "forwards to target", True, lambda v: f"{v:,.0f}", _rel),
)


@dataclasses.dataclass
class Comparison:
    table: pd.DataFrame  # one row per (unit, metric)
    only_base: list[str]
    only_head: list[str]

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table.verdict == REGRESSION]


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["error_rate"] = 1.0 - df.accuracy.astype(float)
    if "forwards_to_target" not in df.columns:
        df["forwards_to_target"] = float("nan")
    # The index names differ from the columns so that groupby by column stays unambiguous.
    df.index = pd.MultiIndex.from_arrays([df.suite, df.cell_id], names=["suite_key", "cell_key"])
    return df


def _step_samples(rows: pd.DataFrame) -> list[float]:
    """Every timed step of these cells (warm-up steps are left out, as in the record's median),
    from the records load_results read (never the files again)."""
    samples: list[float] = []
    for record in rows[RECORD_COLUMN]:
        samples += timed_step_times(record)
    return samples


def _change(metric: Metric, base: float, head: float) -> float:
    if metric.relative:
        if base == 0:
            return 0.0 if head == 0 else math.inf
        return head / base - 1.0
    return head - base


def _test(metric: Metric, base_rows: pd.DataFrame, head_rows: pd.DataFrame) -> tuple[str, float | None]:
    """(description of the test used, p-value or None when the threshold alone decides)."""
    from scipy import stats  # here: reading records and rendering need no scipy (its import is slow)

    if metric.key == "step_time":
        b, h = _step_samples(base_rows), _step_samples(head_rows)
        if len(b) >= 3 and len(h) >= 3:
            p = stats.mannwhitneyu(h, b, alternative="two-sided").pvalue
            return f"Mann-Whitney U on steps ({len(b)}/{len(h)}), p={p:.3g}", float(p)
        return "threshold only (too few timed steps)", None
    b = base_rows[metric.column].astype(float).to_numpy()
    h = head_rows[metric.column].astype(float).to_numpy()
    if len(b) < 2:
        return "threshold only (1 seed)", None
    diff = h - b
    if (diff == diff[0]).all():
        # Identical differences (e.g. a deterministic metric) make the t statistic
        # undefined: there is no noise to test against, so the threshold decides.
        return f"paired t-test ({len(b)} seeds): constant difference, threshold only", None
    p = stats.ttest_rel(h, b).pvalue
    return f"paired t-test ({len(b)} seeds), p={p:.3g}", float(p)


def _verdict(change: float, threshold: float, p: float | None, alpha: float) -> str:
    if abs(change) <= threshold:
        return SAME
    if p is not None and not p < alpha:
        return NOISE
    return REGRESSION if change > 0 else IMPROVED


def _status_rows(unit: str, seeds: str, base: pd.DataFrame, head: pd.DataFrame) -> list[dict]:
    """Seeds that did not finish on both sides: a new failure is a regression; the others are
    shown too (their metrics cannot be compared), never dropped in silence."""
    rows = []
    pairs = [(b.seed, b.status, h.status) for b, h in zip(base.itertuples(), head.itertuples())]
    broken = [p for p in pairs if p[1] in OK_STATUSES and p[2] not in OK_STATUSES]
    fixed = [p for p in pairs if p[1] not in OK_STATUSES and p[2] in OK_STATUSES]
    still = [p for p in pairs if p[1] not in OK_STATUSES and p[2] not in OK_STATUSES]
    for group, verdict in ((broken, REGRESSION), (fixed, IMPROVED), (still, SAME)):
        if group:
            rows.append(dict(cell=unit, seeds=seeds, metric="status", base="", head="", threshold="-", test="-",
                             change="; ".join(f"s{seed}: {b} → {h}" for seed, b, h in group), verdict=verdict))
    return rows


def _unit_rows(unit: str, base: pd.DataFrame, head: pd.DataFrame, thr: dict[str, float]) -> list[dict]:
    seeds = ",".join(f"s{s}" for s in base.seed)
    rows = _status_rows(unit, seeds, base, head)
    both_ok = base.status.isin(OK_STATUSES).to_numpy() & head.status.isin(OK_STATUSES).to_numpy()
    base, head = base[both_ok], head[both_ok]
    for metric in METRICS:
        b_vals, h_vals = base[metric.column].astype(float), head[metric.column].astype(float)
        threshold = thr[metric.key]
        row = dict(cell=unit, seeds=seeds, metric=metric.label, threshold=metric.delta(threshold))
        if metric.key == "forwards_to_target" and (b_vals.isna().any() or h_vals.isna().any()):
            # Not reaching the target is the outcome here, not a missing value.
            if b_vals.isna().all() and h_vals.isna().all():
                continue
            b_hit, h_hit = int(b_vals.notna().sum()), int(h_vals.notna().sum())
            verdict = REGRESSION if h_hit < b_hit else IMPROVED if h_hit > b_hit else SAME
            rows.append(row | dict(base=f"reached {b_hit}/{len(b_vals)}", head=f"reached {h_hit}/{len(h_vals)}",
                                   change="-", test="target reached or not", verdict=verdict))
            continue
        if b_vals.empty or b_vals.isna().any() or h_vals.isna().any():
            continue
        b_mean, h_mean = float(b_vals.mean()), float(h_vals.mean())
        change = _change(metric, b_mean, h_mean)
        test, p = _test(metric, base, head)
        rows.append(row | dict(base=metric.fmt(b_mean), head=metric.fmt(h_mean),
                               change=metric.delta(change),
                               test=test, verdict=_verdict(change, threshold, p, thr["alpha"])))
    return rows


def _missing_rows(only_base: list[str], allow_missing: bool) -> list[dict]:
    """BASE's cells that HEAD lacks: a run that died halfway must not pass the gate."""
    verdict = MISSING_ALLOWED if allow_missing else REGRESSION
    return [dict(cell=cell, seeds="", metric="missing in HEAD", base="record", head="none or unreadable",
                 change="-", threshold="-", test="-", verdict=verdict) for cell in only_base]


def compare(base: pd.DataFrame, head: pd.DataFrame,
            thresholds_for: Callable[[str], dict[str, float]], allow_missing: bool = False) -> Comparison:
    """Match BASE and HEAD cells by (suite, cell id); ``thresholds_for(suite)`` gives that suite's thresholds."""
    base, head = _prepare(base), _prepare(head)
    matched = base.index.intersection(head.index)
    only_base = sorted("/".join(k) for k in base.index.difference(head.index))
    only_head = sorted("/".join(k) for k in head.index.difference(base.index))
    if matched.empty:
        raise UserError(f"no cell is in both BASE and HEAD ({len(base)} and {len(head)} cells): nothing to compare")
    b, h = base.loc[matched], head.loc[matched]
    rows: list[dict] = _missing_rows(only_base, allow_missing)
    for key, group in b.groupby(["suite", "model", "task", "label"], sort=True):
        suite, model, task, label = key
        unit = unit_key(suite, model, task, label)
        rows += _unit_rows(unit, group.sort_values("seed"), h.loc[group.sort_values("seed").index], thresholds_for(suite))
    columns = ["cell", "seeds", "metric", "base", "head", "change", "threshold", "test", "verdict"]
    return Comparison(pd.DataFrame(rows, columns=columns), only_base, only_head)


def render(result: Comparison) -> str:
    """The gate's Markdown: the change table, one-sided cells, and a one-line verdict."""
    out = ["# zobench compare: BASE → HEAD\n"]
    out.append(result.table.to_markdown(index=False) if len(result.table) else "No cells on both sides.")
    for side, cells in (("BASE", result.only_base), ("HEAD", result.only_head)):
        if cells:
            out.append(f"\nOnly in {side} ({len(cells)}, not compared):\n" + "\n".join(f"- {c}" for c in cells))
    n = len(result.regressions)
    out.append(f"\n{n} regression(s)." if n else "\nNo regression.")
    return "\n".join(out) + "\n"


def parse_overrides(items: list[str] | None) -> dict[str, float]:
    """``--threshold step_time=0.2`` items → a mapping (validated later with the suite's)."""
    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise UserError(f"--threshold takes KEY=NUMBER (keys: {', '.join(DEFAULT_THRESHOLDS)}), got '{item}'")
    return out


def _records(path: Path, side: str, suite: str | None) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"{side} '{path}' does not exist; pass a results dir, a suite folder or one record file")
    df = load_results(path)
    if suite is not None:
        df = df[df.suite == suite]
    if df.empty:
        raise UserError(f"no records under {side} '{path}'" + (f" for suite '{suite}'" if suite else ""))
    return df


def gate(base: Path, head: Path, suite: str | None = None, overrides: dict[str, float] | None = None,
         allow_missing: bool = False) -> Comparison:
    """Load both sides and compare them. Thresholds: defaults, then the suite's, then ``overrides``.

    ``suite`` (a built-in name or a YAML path) keeps only that suite's records; without it,
    each suite's own thresholds apply where the suite is built in.
    """
    from zobench.run.suite import load_suite, suite_names

    overrides = overrides or {}
    parse_thresholds(overrides, "--threshold")  # reject bad keys before reading any record
    spec = load_suite(suite) if suite is not None else None
    base_df = _records(Path(base), "BASE", spec.name if spec else None)
    head_df = _records(Path(head), "HEAD", spec.name if spec else None)

    def thresholds_for(name: str) -> dict[str, float]:
        own = spec.settings["thresholds"] if spec else load_suite(name).settings["thresholds"] if name in suite_names() else {}
        return parse_thresholds({**own, **overrides}, f"thresholds for suite {name}")

    return compare(base_df, head_df, thresholds_for, allow_missing)
