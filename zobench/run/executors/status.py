"""``zobench status`` and ``zobench cancel``: each cell's state from the records and the live
claims of a results dir, with Slurm job states from squeue (never sacct).

States: ``pending`` (a queued Slurm job), ``running`` (a live claim: a running job, a Ray
task, a local run), ``done`` (a stored ok/diverged/oom record), ``failed`` (error/timeout).
Usage: ``rows = cell_states(results_dir, "smoke")``; ``cancel_suite(results_dir, "smoke")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zobench.run.claims import Claim, claim_path, live_claims
from zobench.run.executors import slurm_queue
from zobench.run.executors.liveness import claim_alive
from zobench.paths import check_name
from zobench.results.store import read_record

FAILED = ("error", "timeout")


def suites_in(results_dir: Path) -> list[str]:
    names = set()
    for folder in ("runs", "claims"):
        base = Path(results_dir) / folder
        if base.is_dir():
            names.update(p.name for p in base.iterdir() if p.is_dir())
    return sorted(names)


def _slurm_states(claims: dict[str, dict[str, Any]]) -> dict[str, str]:
    ids = [str(c["job_id"]) for c in claims.values() if c.get("executor") == "slurm" and c.get("job_id")]
    try:
        return slurm_queue.states(ids)
    except slurm_queue.SlurmUnavailable:
        return {}


def cell_states(results_dir: Path, suite: str) -> list[dict[str, Any]]:
    """One row per cell with a record or a live claim: cell_id, state, status, executor, job_id."""
    check_name(suite, "suite")
    claims = live_claims(results_dir, suite, alive=claim_alive)
    queue = _slurm_states(claims)
    rows: dict[str, dict[str, Any]] = {}
    runs = Path(results_dir) / "runs" / suite
    for path in sorted(runs.glob("*.json")) if runs.is_dir() else []:
        record = read_record(path) or {}
        status = record.get("status")
        rows[path.stem] = {"cell_id": path.stem, "state": "failed" if status in FAILED else "done", "status": status,
                           "executor": record.get("executor", {}).get("name", "local"),
                           "job_id": record.get("executor", {}).get("job_id") or record.get("executor", {}).get("task_id")}
    for cell_id, info in claims.items():
        job_id = info.get("job_id")
        state = "pending" if queue.get(str(job_id)) == "PENDING" else "running"
        rows[cell_id] = {"cell_id": cell_id, "state": state, "status": rows.get(cell_id, {}).get("status"),
                         "executor": info.get("executor"), "job_id": job_id}
    return [rows[k] for k in sorted(rows)]


def cancel_suite(results_dir: Path, suite: str) -> tuple[list[str], list[dict[str, Any]]]:
    """scancel the suite's live Slurm jobs and drop their claims; (cancelled job ids, other live claims)."""
    check_name(suite, "suite")
    claims = live_claims(results_dir, suite, alive=claim_alive)
    slurm = {cell_id: info for cell_id, info in claims.items() if info.get("executor") == "slurm" and info.get("job_id")}
    slurm_queue.cancel([str(info["job_id"]) for info in slurm.values()])
    for cell_id, info in slurm.items():
        Claim(claim_path(results_dir, suite, cell_id), info).release()
    others = [{"cell_id": c, **info} for c, info in claims.items() if c not in slurm]
    return sorted(str(info["job_id"]) for info in slurm.values()), others
