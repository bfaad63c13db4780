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


def cell_oom(payload, emit):
    """Mimics execute_cell's contract: the child classifies CUDA OOM as status oom."""
    from zobench.worker import status_for

    try:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    except Exception as exc:
        return {"status": status_for(exc)}


def _cell_record(payload):
    from zobench.api import Cell
    from zobench.worker import new_record

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
