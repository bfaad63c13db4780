"""Slurm job state from ``squeue`` and ``scontrol``, never ``sacct``: many clusters (and CI's
one-node Slurm) run without accounting, where submitit's sacct-based status is "inaccurate".
Usage: ``states(["12", "13"])`` → {"12": "PENDING"}; ``ended_state("13")`` → "CANCELLED".
"""

from __future__ import annotations

import re
import shutil
import subprocess

# States in which a job still holds (or will hold) its cell; COMPLETING: the job's
# processes are ending, its record is already written.
LIVE = {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
        "RESIZING", "SIGNALING", "STAGE_OUT", "COMPLETING"}


class SlurmUnavailable(RuntimeError):
    pass


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    if shutil.which(argv[0]) is None:
        raise SlurmUnavailable(f"{argv[0]} not found: is this a Slurm login node?")
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def states(job_ids: list[str]) -> dict[str, str]:
    """job id → state for the jobs squeue still knows (ended jobs may be absent)."""
    if not job_ids:
        return {}
    done = _run(["squeue", "-h", "--states=all", "-o", "%i %T", "-j", ",".join(job_ids)])
    if done.returncode != 0 and "Invalid job id" not in done.stderr:
        raise SlurmUnavailable(f"squeue failed: {done.stderr.strip()}")
    out = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    if done.returncode != 0 and len(job_ids) > 1:  # one purged id fails the whole query: ask one by one
        for job_id in job_ids:
            out.update(states([job_id]) if job_id not in out else {})
    return out


def ended_state(job_id: str) -> str:
    """The final state of an ended job (CANCELLED, FAILED, TIMEOUT, ...), or UNKNOWN once purged."""
    done = _run(["scontrol", "show", "job", job_id])
    match = re.search(r"JobState=(\S+)", done.stdout)
    return match.group(1) if match else "UNKNOWN"


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        _run(["scancel", *job_ids])
