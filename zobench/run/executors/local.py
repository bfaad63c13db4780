"""``--executor local``: cells on this host, up to one per GPU at once (a k-GPU cell holds k
disjoint GPUs), each pinned through CUDA_VISIBLE_DEVICES; CPU cells one at a time unless
``parallel`` allows more (recorded in each record: concurrent CPU cells distort step times).
One thread per running cell waits on its isolated process (zobench.run.launcher).
Usage: ``LocalExecutor(gpus=[0, 1], parallel=1)``.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import multiprocessing as mp
import socket
from typing import Any, Callable

from zobench.api import Cell
from zobench.run.executors.devices import Need, cuda_visible, pack, visible_gpu_count
from zobench.run.executors.entry import OnMessage, run_cell
from zobench.run.launcher import Target
from zobench.run.worker import execute_cell


def gpus_needed(cell: Cell, pool: list[int]) -> int:
    """0 for a CPU cell (device cpu, or auto on a host without a GPU in the pool)."""
    if cell.device == "cpu" or (cell.device == "auto" and not pool):
        return 0
    return cell.gpus


class LocalExecutor:
    name = "local"
    writes_records = False

    def __init__(self, gpus: list[int] | None = None, parallel: int = 1, target: Target = execute_cell,
                 on_start: Callable[[str], None] | None = None, on_message: OnMessage | None = None):
        """``on_start(cell_id)`` when a cell really starts; ``on_message`` gets its per-step messages."""
        self.gpus = list(range(visible_gpu_count())) if gpus is None else list(gpus)
        self.parallel = parallel
        self.target = target
        self.on_start, self.on_message = on_start, on_message
        self.free = list(self.gpus)
        self.cpu_free = parallel
        self.waiting: list[tuple[str, Cell, dict[str, Any]]] = []
        self.running: dict[cf.Future, tuple[str, list[int], bool]] = {}
        self.pool = cf.ThreadPoolExecutor(max_workers=len(self.gpus) + parallel, thread_name_prefix="zobench-cell")
        self._count = 0
        # cancel() writes once; every running cell's launcher sees the reader readable and stops its child.
        self._stop_reader, self._stop_writer = mp.Pipe(duplex=False)

    def submit(self, cell: Cell, payload: dict[str, Any]) -> str:
        self._count += 1
        job_id = f"{socket.gethostname()}:{os.getpid()}:{self._count}"
        self.waiting.append((job_id, cell, payload))
        self._start_ready()
        return job_id

    def _start_ready(self) -> None:
        needs = [Need(job_id, gpus_needed(cell, self.gpus)) for job_id, cell, _ in self.waiting]
        kinds = {"cpu" if cpu else "gpu" for _, _, cpu in self.running.values()}
        starts = dict(pack(needs, self.free, self.cpu_free, running=kinds.pop() if kinds else None))
        for job_id, cell, payload in [w for w in self.waiting if w[0] in starts]:
            self.waiting.remove((job_id, cell, payload))
            devices = starts[job_id]
            cpu = gpus_needed(cell, self.gpus) == 0
            if cpu:
                self.cpu_free -= 1
            self.free = [g for g in self.free if g not in devices]
            if devices:
                payload = {**payload, "cuda_visible_devices": cuda_visible(devices)}
            info = {"name": self.name, "job_id": job_id, "parallel": self.parallel, "gpus": devices}
            if self.on_start is not None:
                self.on_start(cell.cell_id)
            # Per-step messages only when cells run one at a time: concurrent progress bars garble.
            one_at_a_time = len(self.gpus) <= 1 and self.parallel == 1
            future = self.pool.submit(run_cell, payload, info, self.target,
                                      self.on_message if one_at_a_time else None, self._stop_reader)
            self.running[future] = (job_id, devices, cpu)

    def wait(self, timeout_s: float) -> list[tuple[str, dict[str, Any] | None]]:
        # Start what fits first, so a cell's end is reported before the next one's start.
        self._start_ready()
        done, _ = cf.wait(list(self.running), timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        ended = []
        for future in done:
            job_id, devices, cpu = self.running.pop(future)
            self.free.extend(devices)
            self.cpu_free += cpu
            ended.append((job_id, future.result()))
        return ended

    def cancel(self) -> None:
        """Drop queued cells and stop running ones (their processes are ended, not left behind)."""
        self.waiting.clear()
        self._stop_writer.send(None)
        self.pool.shutdown(wait=True, cancel_futures=True)
