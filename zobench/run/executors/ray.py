"""``--executor ray``: each cell is a Ray task holding the cell's GPUs (``num_gpus``), with
configurable ``num_cpus`` and ``memory``; workers are never reused (``max_calls=1``) so one
cell's CUDA memory never lingers into the next. Inside the task the cell still runs as its
own isolated process (zobench.run.executors.entry). The record comes back to the driver, which
stores it: no shared filesystem is needed.
A task whose worker or node dies is retried once by Ray (``max_retries=1``); after that the
driver records the cell as ``error`` with Ray's reason.
Usage: ``RayExecutor(address="ray://head:10001", cpus=4, memory_gb=32)``.
"""

from __future__ import annotations

from typing import Any

from zobench.api import Cell
from zobench.run.executors.entry import failure_record, run_cell
from zobench.run.launcher import Target
from zobench.run.worker import execute_cell

RETRIES = 1


def ray_cell(payload: dict[str, Any], gpus: int, target: Target) -> dict[str, Any]:
    """The task body, on the worker: pin the isolated cell to the GPUs Ray assigned."""
    import ray

    ids = [str(i) for i in ray.get_gpu_ids()] if gpus else []
    payload = {**payload, "cuda_visible_devices": ",".join(ids) if gpus else None}
    context = ray.get_runtime_context()
    info = {"name": "ray", "task_id": context.get_task_id(), "node_id": context.get_node_id(), "gpus": ids}
    return run_cell(payload, info, target)


class RayExecutor:
    name = "ray"
    writes_records = False

    def __init__(self, address: str | None = None, cpus: float = 1, memory_gb: float | None = None,
                 target: Target = execute_cell):
        import ray

        if not ray.is_initialized():  # tests and notebooks may have started one already
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.ray = ray
        self.cpus, self.memory_gb, self.target = cpus, memory_gb, target
        self.task = ray.remote(max_calls=1)(ray_cell)  # max_calls is not accepted by .options()
        self.refs: dict[Any, tuple[str, Cell]] = {}

    def submit(self, cell: Cell, payload: dict[str, Any]) -> str:
        gpus = 0 if cell.device == "cpu" else cell.gpus
        options = {"num_gpus": gpus, "num_cpus": self.cpus, "max_retries": RETRIES,
                   "retry_exceptions": False, "name": cell.cell_id}
        if self.memory_gb:
            options["memory"] = int(self.memory_gb * 2**30)
        ref = self.task.options(**options).remote(payload, gpus, self.target)
        job_id = ref.task_id().hex()
        self.refs[ref] = (job_id, cell)
        return job_id

    def wait(self, timeout_s: float) -> list[tuple[str, dict[str, Any] | None]]:
        if not self.refs:
            return []
        ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=timeout_s)
        ended = []
        for ref in ready:
            job_id, cell = self.refs.pop(ref)
            try:
                record = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:  # worker or node lost, also after the retry
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                record = failure_record(cell, "error", f"ray task failed after {RETRIES} retry: "
                                                       f"{type(exc).__name__}: {reason}"[:2000])
                record["executor"] = {"name": self.name, "task_id": job_id, "submitted_at": None}
            ended.append((job_id, record))
        return ended

    def cancel(self) -> None:
        for ref in list(self.refs):
            self.ray.cancel(ref, force=True)
        self.refs.clear()
