"""Child-process targets for test_launcher (importable by spawned children)."""

from __future__ import annotations

import os
import signal
import time

import torch


def returns(payload, emit):
    emit("step", {"n": 1})
    return {"echo": payload}


def raises(payload, emit):
    raise ValueError("boom from the child")


def hangs(payload, emit):
    time.sleep(600)


def killed(payload, emit):
    os.kill(os.getpid(), signal.SIGKILL)


def cell_whose_step_fails(payload, emit):
    """The real cell entry (zobench.run.worker.execute_cell) with the floor's step raising, after one real
    forward, the exception ``payload["raise"]`` names: torch.OutOfMemoryError, as a CUDA allocation
    raises it, or ValueError. The patch lives in this spawned child only."""
    from zobench.methods import floor
    from zobench.run.worker import execute_cell

    exception = {"oom": torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
                 "value": ValueError("not a memory problem")}[payload["raise"]]

    def step(self, closure):
        closure()
        raise exception

    floor.Floor.step = step
    return execute_cell(payload, emit)


def _cell_record(payload):
    from zobench.api import Cell
    from zobench.run.worker import new_record

    cell = Cell(**payload["cell"])
    return cell, new_record(cell)


def reports_devices(payload, emit):
    """A stand-in cell: records the CUDA_VISIBLE_DEVICES it was given and when it ran."""
    cell, record = _cell_record(payload)
    t0 = time.time()
    emit("step", {"step": 1})
    time.sleep(float(cell.args.get("sleep_s", 1.0)))
    record["status"] = "ok"
    record["metrics"] = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "t0": t0, "t1": time.time()}
    return record


def kills_its_worker(payload, emit):
    """Kills the process that runs the cell's entry (a Ray worker) on the first ``deaths`` attempts."""
    from pathlib import Path

    cell, record = _cell_record(payload)
    attempts = Path(cell.args["attempts_file"])
    with attempts.open("a") as f:
        f.write(f"{os.getppid()}\n")
    if len(attempts.read_text().splitlines()) <= int(cell.args["deaths"]):
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)
    record["status"] = "ok"
    return record


def sleeps_then_marks(payload, emit):
    """Sleeps, then leaves a marker file: a cancelled cell never leaves one."""
    from pathlib import Path

    cell, record = _cell_record(payload)
    Path(cell.args["started_dir"]).joinpath(cell.cell_id).touch()
    time.sleep(float(cell.args["sleep_s"]))
    Path(cell.args["marker_dir"]).joinpath(cell.cell_id).touch()
    record["status"] = "ok"
    return record


def temp_dir(payload, emit):
    import tempfile

    return tempfile.gettempdir()
