"""The one driver behind every executor: skip finished cells, claim each cell, submit it,
store the records that come back, release the claims, show progress; Ctrl-C cancels.

Claims (zobench.run.claims) are taken here and nowhere else, so two ``zobench run``s on one
results dir, whatever their executors, never run a cell twice, and a rerun never resubmits
a cell whose Slurm job is queued or running (the claim carries the job id; liveness.py asks
squeue). Claims of cells whose records come back to the driver (local, Ray) are kept fresh
by a heartbeat; a Slurm job releases its own claim once it stored its record.
Usage: ``records = drive(executor, cells, results_dir, data_dir)``.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Protocol

from zobench.api import Cell, Executor
from zobench.run.claims import Claim, try_claim
from zobench.run.executors.liveness import claim_alive
from zobench.results.store import is_done, read_record, record_path, write_record

WAIT_S = 1.0  # how long one wait may block before the driver looks again (Ctrl-C stays prompt)


class RunProgress(Protocol):
    def skipped(self, cell_id: str) -> None: ...

    def held(self, cell_id: str, holder: dict[str, Any]) -> None: ...

    def cell_started(self, cell_id: str) -> None: ...

    def cell_finished(self, record: dict[str, Any]) -> None: ...


def _payload(cell: Cell, data_dir: Path | None, claim: Claim) -> dict[str, Any]:
    return {"cell": cell.to_dict(), "data_dir": str(data_dir) if data_dir else None, "submitted_at": time.time(),
            "claim": {"path": str(claim.path), "info": dict(claim.info)}}


class _InFlight:
    """A submitted cell: its claim, and the claim's heartbeat while the driver owns it."""

    def __init__(self, cell: Cell, claim: Claim, submitted_at: float, heartbeat: bool):
        self.cell, self.claim, self.submitted_at = cell, claim, submitted_at
        self.beats = contextlib.ExitStack()
        if heartbeat:
            self.beats.enter_context(claim.heartbeat())

    def close(self) -> None:
        self.beats.close()
        self.claim.release()


def drive(executor: Executor, cells: list[Cell], results_dir: Path, data_dir: Path | None, force: bool = False,
          progress: RunProgress | None = None, detach: bool = False, submit_started: bool = False) -> list[dict[str, Any]]:
    """Run ``cells`` through ``executor``; the records of the cells that ran (none with ``detach``).

    ``submit_started``: report a cell as started when it is submitted (engines that queue
    remotely); the local executor reports the real start itself.
    """
    in_flight: dict[str, _InFlight] = {}
    records: list[dict[str, Any]] = []
    try:
        for cell in cells:
            claim = try_claim(results_dir, cell.suite, cell.cell_id, executor=executor.name, alive=claim_alive)
            if not isinstance(claim, Claim):
                _say(progress, "held", cell.cell_id, claim)
                continue
            # Checked under the claim: another run may have finished this cell a moment ago.
            if not force and is_done(results_dir, cell):
                claim.release()
                _say(progress, "skipped", cell.cell_id)
                continue
            payload = _payload(cell, data_dir, claim)
            try:
                job_id = executor.submit(cell, payload)
            except BaseException:
                claim.release()
                raise
            claim.update(job_id=job_id)
            # A job that stores its own record also releases its claim; squeue vouches for it meanwhile.
            in_flight[job_id] = _InFlight(cell, claim, payload["submitted_at"], heartbeat=not executor.writes_records)
            if submit_started:
                _say(progress, "cell_started", cell.cell_id)
        if detach:
            for flight in in_flight.values():  # the jobs release their claims; stop only our heartbeats
                flight.beats.close()
            return []
        while in_flight:
            for job_id, record in executor.wait(WAIT_S):
                flight = in_flight.pop(job_id)
                records.append(_store(results_dir, flight, record))
                flight.close()
                _say(progress, "cell_finished", records[-1])
    except BaseException:
        executor.cancel()
        for flight in in_flight.values():
            flight.close()
        raise
    return records


def _store(results_dir: Path, flight: _InFlight, record: dict[str, Any] | None) -> dict[str, Any]:
    """Store a record that came back to the driver; read one the job stored itself."""
    if record is None:
        stored = read_record(record_path(results_dir, flight.cell.suite, flight.cell.cell_id))
        return stored or {"cell_id": flight.cell.cell_id, "status": "error", "error": "record vanished"}
    section = record.setdefault("executor", {})
    section["submitted_at"] = flight.submitted_at
    section["stored_at"] = time.time()
    write_record(results_dir, record)
    return record


def _say(progress: RunProgress | None, event: str, *args: Any) -> None:
    if progress is not None:
        getattr(progress, event)(*args)
