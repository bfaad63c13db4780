"""The cell entry every executor runs: the isolated cell process (zobench.run.launcher) plus the
executor's provenance in the record. Local threads, Ray tasks and Slurm jobs all call
``run_cell``; only where it runs differs.

Timestamps (wall clock, ``time.time()``) let reports and zobench.bench_executors measure
dispatch overhead: ``submitted_at`` (the driver) → ``started_at`` (this entry) →
``first_step_at`` (the first step's message) … ``last_step_at`` → ``ended_at`` → ``stored_at``.
Usage: ``record = run_cell(payload, {"name": "ray", "task_id": ...})``.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from multiprocessing.connection import Connection
from typing import Any, Callable

from zobench.api import Cell
from zobench.run.executors.cotenants import Cotenancy
from zobench.run.launcher import Target, run_isolated
from zobench.measure.contention import assess
from zobench.run.worker import execute_cell, new_record

OnMessage = Callable[[str, dict], None]


def pinned(target: Target, payload: dict[str, Any], emit: OnMessage) -> Any:
    """Child side: pin the cell to its GPUs before anything initialises CUDA. (Dying with the parent,
    with the scratch folder removed, is the launcher's guard: PR_SET_PDEATHSIG with SIGTERM plus a watchdog.)"""
    devices = payload.get("cuda_visible_devices")
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    return target(payload, emit)


def failure_record(cell: Cell, status: str, error: str | None) -> dict[str, Any]:
    record = new_record(cell)
    record.update(status=status, error=error)
    return record


def run_cell(payload: dict[str, Any], executor: dict[str, Any], target: Target = execute_cell,
             on_message: OnMessage | None = None, stop: Connection | None = None) -> dict[str, Any]:
    """Run the cell of ``payload`` in its own process; the record, with ``executor`` provenance added."""
    cell = Cell(**payload["cell"])
    marks: dict[str, float] = {"started_at": time.time()}

    def handle(kind: str, data: dict) -> None:
        if kind == "step":
            marks.setdefault("first_step_at", time.time())
            marks["last_step_at"] = time.time()
        if on_message is not None:
            on_message(kind, data)

    cotenancy = Cotenancy.enter(cell.cell_id, cell.suite, executor.get("name", "?"))
    try:
        outcome = run_isolated(functools.partial(pinned, target), payload, cell.timeout_s, on_message=handle,
                               stop=stop)
    finally:
        others = cotenancy.leave()
    record = outcome.result if outcome.status == "ok" else failure_record(cell, outcome.status, outcome.error)
    marks["ended_at"] = time.time()
    env = record.get("env", {})
    held = env.get("gpus") or ([env["gpu"]] if env.get("gpu") else [])
    record["executor"] = {**executor, "host": socket.gethostname(), "pid": os.getpid(),
                          "gpu_uuids": [g["uuid"] for g in held if g.get("uuid")],
                          "cuda_visible_devices": payload.get("cuda_visible_devices",
                                                              os.environ.get("CUDA_VISIBLE_DEVICES")),
                          "submitted_at": payload.get("submitted_at"), **marks, "cotenant_cells": others}
    assess(record)
    return record
