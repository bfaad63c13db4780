"""asv ``track_*`` benchmarks that read zobench records instead of measuring anything.

The records of the commit under test are produced by ``zobench run`` in isolated child
processes (asv's own timers cannot see GPU memory); ``zobench asv-record`` points these
benchmarks at them through two variables:

- ``ZOBENCH_ASV_RECORDS``: the results dir (or suite folder) holding that commit's records;
- ``ZOBENCH_ASV_SUITE``: only this suite's records (empty: all).

One parameter value per method unit ``suite/model--task--label``; each value is the mean
over its seeds. asv treats lower as better, so the error rate is tracked, not accuracy.
"""

import math
import os

from zobench import load_results
from zobench.results.records import OK_STATUSES, mean_over_seeds, unit_key


def _records():
    path = os.environ.get("ZOBENCH_ASV_RECORDS")
    if not path or not os.path.exists(path):
        return None
    df = load_results(path)
    suite = os.environ.get("ZOBENCH_ASV_SUITE")
    return df[df.suite == suite] if suite else df


RECORDS = _records()
UNITS = sorted({unit_key(r.suite, r.model, r.task, r.label) for r in RECORDS.itertuples()}) \
    if RECORDS is not None and len(RECORDS) else ["no-records"]


def _value(unit, column):
    """Mean of one metric over the unit's finished seeds; asv skips the point when there is none."""
    if RECORDS is None:
        raise NotImplementedError("ZOBENCH_ASV_RECORDS is not set: run these through `zobench asv-record`")
    rows = RECORDS[RECORDS.apply(lambda r: unit_key(r.suite, r.model, r.task, r.label) == unit, axis=1)]
    value = mean_over_seeds(rows[rows.status.isin(OK_STATUSES)][column])
    if not math.isfinite(value):
        raise NotImplementedError(f"{unit}: no finished cell with {column}")
    return value


def track_peak_memory(unit):
    return _value(unit, "peak_mem_bytes")


def track_step_time(unit):
    return _value(unit, "step_time_s")


def track_error_rate(unit):
    if RECORDS is None:
        raise NotImplementedError("ZOBENCH_ASV_RECORDS is not set")
    return 1.0 - _value(unit, "accuracy")


def track_divergence_events(unit):
    return _value(unit, "divergence_events")


for _bench, _unit in ((track_peak_memory, "bytes"), (track_step_time, "seconds"),
                      (track_error_rate, "fraction"), (track_divergence_events, "events")):
    _bench.params = UNITS
    _bench.param_names = ["unit"]
    _bench.unit = _unit
    _bench.timeout = 120  # reading records only; generous for a slow shared runner
