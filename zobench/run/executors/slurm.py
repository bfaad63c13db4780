"""``--executor slurm``: one Slurm job per cell through submitit, with the cell's GPUs
(``gpus_per_node``), ``cpus``, ``mem_gb``, ``partition``, ``account`` and ``qos``; the time
limit is the cell's ``timeout_s`` plus a margin for loading and storing.
The results dir must be on a filesystem the nodes share: the job stores its own record
there (atomically, zobench.results.store) and releases the cell's claim, so a driver started with
``--detach`` may leave; submitit's files and the job's stdout/stderr sit beside the records
in ``runs/<suite>/slurm/<cell_id>/``. Job state comes from squeue/scontrol (slurm_queue),
never from sacct, which many clusters do not configure.
Usage: ``SlurmExecutor(results_dir, partition="gpu", cpus=8, mem_gb=64)``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from zobench.api import Cell
from zobench.run.claims import Claim
from zobench.run.executors import slurm_queue
from zobench.run.executors.entry import failure_record, run_cell
from zobench.run.launcher import Target
from zobench.paths import checked_child
from zobench.results.store import read_record, record_path, write_record
from zobench.run.worker import execute_cell

MARGIN_MIN = 5  # loading the job's Python and storing the record, on top of the cell's own timeout
POLL_S = 2.0  # squeue is a controller RPC: poll it gently


def slurm_cell(payload: dict[str, Any], results_dir: str, target: Target) -> str:
    """The job body, on the node: run the cell, store its record, release its claim."""
    info = {"name": "slurm", "job_id": os.environ.get("SLURM_JOB_ID"),
            "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"), "node": os.environ.get("SLURMD_NODENAME"),
            "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}
    record = run_cell(payload, info, target)
    record["executor"]["stored_at"] = time.time()
    write_record(Path(results_dir), record)
    claim = payload.get("claim")
    if claim:
        Claim(Path(claim["path"]), claim["info"]).release()
    return record["status"]


def log_folder(results_dir: Path, cell: Cell) -> Path:
    return checked_child(Path(results_dir) / "runs", cell.suite, "slurm", cell.cell_id)


class SlurmExecutor:
    name = "slurm"
    writes_records = True

    def __init__(self, results_dir: Path, partition: str | None = None, account: str | None = None,
                 qos: str | None = None, cpus: int = 1, mem_gb: float | None = None, target: Target = execute_cell):
        self.results_dir = Path(results_dir)
        self.options = {"partition": partition, "account": account, "qos": qos}
        self.cpus, self.mem_gb, self.target = cpus, mem_gb, target
        self.jobs: dict[str, Cell] = {}
        self._last_poll = 0.0

    def submit(self, cell: Cell, payload: dict[str, Any]) -> str:
        import submitit

        executor = submitit.SlurmExecutor(folder=log_folder(self.results_dir, cell))
        params: dict[str, Any] = {"job_name": f"zobench-{cell.cell_id}"[:120], "cpus_per_task": self.cpus,
                                  "time": math.ceil(cell.timeout_s / 60) + MARGIN_MIN, "nodes": 1, "ntasks_per_node": 1}
        gpus = 0 if cell.device == "cpu" else cell.gpus
        if gpus:
            params["gpus_per_node"] = gpus
        if self.mem_gb:
            params["mem"] = f"{int(self.mem_gb * 1024)}M"
        params.update({k: v for k, v in self.options.items() if v})
        executor.update_parameters(**params)
        job = executor.submit(slurm_cell, payload, str(self.results_dir), self.target)
        self.jobs[str(job.job_id)] = cell
        return str(job.job_id)

    def wait(self, timeout_s: float) -> list[tuple[str, dict[str, Any] | None]]:
        time.sleep(max(0.0, min(timeout_s, self._last_poll + POLL_S - time.monotonic())))
        self._last_poll = time.monotonic()
        live = slurm_queue.states(list(self.jobs))
        ended = []
        for job_id in [j for j in self.jobs if live.get(j) not in slurm_queue.LIVE]:
            cell = self.jobs.pop(job_id)
            if self._record_is_from(job_id, cell):
                ended.append((job_id, None))  # the job stored it
                continue
            state = live.get(job_id) or slurm_queue.ended_state(job_id)
            status = "timeout" if state == "TIMEOUT" else "error"
            record = failure_record(cell, status, f"slurm job {job_id} ended ({state}) without storing a record; "
                                                  f"its log: {log_folder(self.results_dir, cell)}")
            record["executor"] = {"name": self.name, "job_id": job_id}
            ended.append((job_id, record))
        return ended

    def _record_is_from(self, job_id: str, cell: Cell) -> bool:
        record = read_record(record_path(self.results_dir, cell.suite, cell.cell_id)) or {}
        return str(record.get("executor", {}).get("job_id")) == job_id

    def cancel(self) -> None:
        slurm_queue.cancel(list(self.jobs))
        self.jobs.clear()
