"""Whether a claim's owner still lives, by executor: a Slurm claim lives while squeue lists its
job in a live state (its driver may have detached long ago); other claims are judged by
claims.py itself (pid on this host, heartbeat). Passed as ``alive`` to try_claim/live_claims.
"""

from __future__ import annotations

from typing import Any

from zobench.run.executors import slurm_queue


def claim_alive(info: dict[str, Any]) -> bool | None:
    job_id = info.get("job_id")
    if info.get("executor") != "slurm" or not job_id:
        return None
    try:
        state = slurm_queue.states([str(job_id)]).get(str(job_id))
    except slurm_queue.SlurmUnavailable:
        return None  # cannot tell from here: the heartbeat rule decides
    return state in slurm_queue.LIVE
