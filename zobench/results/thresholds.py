"""The regression gate's thresholds: their defaults and how a ``thresholds`` mapping is checked.

A leaf module (it imports only zobench.api), so that suite parsing (zobench.run.suite) and the
gate (zobench.results.compare) can both use it without importing each other.
Usage: ``parse_thresholds({"step_time": 0.2}, "suite x")`` → every threshold, defaults filled in.
"""

from __future__ import annotations

import math

from zobench.api import UserError

# How far HEAD may move from BASE before the gate calls it a change, per metric (zobench.results.compare.METRICS):
# relative (a fraction of BASE) for peak memory, step time and forwards to target; absolute for the
# error rate (in points) and divergence events. alpha 0.05: a change must also be beyond its
# threshold, so a chance p < alpha alone never fails.
DEFAULT_THRESHOLDS = {
    "peak_mem": 0.05,
    "step_time": 0.10,
    "error_rate": 0.02,
    "divergence_events": 0.0,
    "forwards_to_target": 0.10,
    "alpha": 0.05,
}


def parse_thresholds(raw: dict, where: str) -> dict[str, float]:
    """Validate a ``thresholds`` mapping (suite YAML or --threshold) over the defaults."""
    unknown = sorted(set(raw) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise UserError(f"{where}: unknown threshold(s) {', '.join(map(str, unknown))}; valid: {', '.join(DEFAULT_THRESHOLDS)}")
    out = dict(DEFAULT_THRESHOLDS)
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise UserError(f"{where}: threshold '{key}' must be a number >= 0, got {value!r}")
        if key == "alpha" and not 0 < value < 1:
            raise UserError(f"{where}: threshold 'alpha' must be between 0 and 1, got {value!r}")
        out[key] = float(value)
    return out
