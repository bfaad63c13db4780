"""Was the machine busy with others while the cell trained? Marks the record ``contended``.

On a shared 2-core machine the same floor-vs-MeZO ratio from one command measured 0.24×,
2.67× and 17.0× depending on what else ran; a flag in the record says which timings to
distrust. Inputs, measured by the monitor process (measure/monitor.py) in the train phase:
system busy CPU seconds minus the cell's own process tree (``train_other_cpu_s`` over
``train_wall_s``: cores others kept busy on average), and other processes on the cell's GPUs.
Usage: ``assess(record)`` after the cell ended.
"""

from __future__ import annotations

from typing import Any

# Half a core busy with others on average: enough to shift step times on a small machine,
# above the background noise (daemons, the shell) of an otherwise idle node.
OTHER_CORES_THRESHOLD = 0.5


def assess(record: dict[str, Any]) -> None:
    metrics = record.get("metrics", {})
    reasons = []
    other, wall = metrics.get("train_other_cpu_s"), metrics.get("train_wall_s")
    if other is not None and wall:
        cores = other / wall
        metrics["train_other_cpu_cores"] = cores
        if cores > OTHER_CORES_THRESHOLD:
            reasons.append(f"other processes kept {cores:.2f} CPU cores busy during training "
                           f"(threshold {OTHER_CORES_THRESHOLD})")
    foreign = record.get("memory", {}).get("foreign_gpu_pids") or []
    if foreign:
        reasons.append(f"other processes on the cell's GPU(s): pids {foreign}")
    record["contended"] = bool(reasons)
    if reasons:
        record["contention"] = reasons
