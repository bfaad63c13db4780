"""Progress for cells running side by side (Ray, Slurm, local on several GPUs): one line per
event with running, done, left and an ETA from the mean cell time and the concurrency seen.
The same events as zobench.run.progress.Progress, which the one-cell-at-a-time path keeps.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from zobench.results.formatting import human_seconds


class PoolProgress:
    def __init__(self, total_cells: int, stream=None):
        self.total = total_cells
        self.stream = stream or sys.stderr  # read now, not at import: the CLI's stderr may be swapped (tests)
        self.done = self.running = 0
        self.max_running = 1
        self.durations: list[float] = []
        self.t0 = time.monotonic()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _counts(self) -> str:
        left = self.total - self.done
        eta = ""
        if self.durations:
            eta = f", ETA {human_seconds(sum(self.durations) / len(self.durations) * left / self.max_running)}"
        return f"({self.running} in flight, {self.done} done, {left} left{eta})"

    def skipped(self, cell_id: str) -> None:
        self.done += 1
        self._print(f"[{self.done}/{self.total}] {cell_id}: already has an ok record, skipped (--force reruns)")

    def held(self, cell_id: str, holder: dict[str, Any]) -> None:
        self.done += 1
        self._print(f"[{self.done}/{self.total}] {cell_id}: held by {_describe(holder)}, not resubmitted")

    def cell_started(self, cell_id: str) -> None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self._print(f"  started {cell_id} {self._counts()}")

    def handle(self, kind: str, data: dict[str, Any]) -> None:  # per-step messages: not shown side by side
        pass

    def cell_finished(self, record: dict[str, Any]) -> None:
        self.running = max(self.running - 1, 0)
        self.done += 1
        section = record.get("executor", {})
        if section.get("started_at") and section.get("ended_at"):
            self.durations.append(section["ended_at"] - section["started_at"])
        detail = f": {record['error']}" if record.get("error") else ""
        self._print(f"[{self.done}/{self.total}] {record['cell_id']} {record['status']}{detail} {self._counts()}")


def _describe(holder: dict[str, Any]) -> str:
    job = f" job {holder['job_id']}" if holder.get("job_id") else ""
    return f"{holder.get('executor', '?')}{job} (host {holder.get('host', '?')}, pid {holder.get('pid', '?')})"
