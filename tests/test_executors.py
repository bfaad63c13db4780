"""The executor seam on this host: GPU packing and pinning (no GPU needed), CPU parallelism,
claims taken once in the driver, resume, co-tenancy and contention in the record."""

from __future__ import annotations

import _thread
import json
import subprocess
import sys
import threading
import time

import pytest

import launcher_targets as targets
from executor_cells import devices_of, make_cell, overlapping
from zobench.api import Executor, UserError
from zobench.run.claims import try_claim
from zobench.run.executors import executor_spec
from zobench.run.executors.devices import Need, check_fits, cuda_visible, pack, parse_gpus
from zobench.run.executors.driver import drive
from zobench.run.executors.local import LocalExecutor
from zobench.results.store import record_path
from zobench.measure.contention import assess
from zobench.measure.monitor import Monitor


def test_pack_gives_each_cell_its_own_gpus_first_fit():
    """One cell per GPU; a k-GPU cell gets k disjoint GPUs; a cell that does not fit does not block later ones."""
    waiting = [Need("a", 2), Need("big", 4), Need("b", 1), Need("c", 1), Need("d", 1)]
    starts = pack(waiting, [0, 1, 2, 3], cpu_slots=0)
    assert starts == [("a", [0, 1]), ("b", [2]), ("c", [3])]
    assert pack([Need("big", 4)], [1, 3], cpu_slots=0) == []


def test_pack_cpu_cells_take_cpu_slots_only_and_never_run_beside_gpu_cells():
    """CPU cells run one at a time unless more CPU slots (--parallel) are allowed; they never take GPUs,
    and CPU and GPU cells never run at once (each would distort the other's step times)."""
    waiting = [Need("x", 0), Need("y", 0), Need("g", 1)]
    assert pack(waiting, [5], cpu_slots=1) == [("x", [])]
    assert pack(waiting, [], cpu_slots=2) == [("x", []), ("y", [])]
    assert pack(waiting, [5], cpu_slots=2, running="gpu") == [("g", [5])]
    assert pack(waiting, [5], cpu_slots=1, running="cpu") == [("x", [])]


def test_gpu_lists_are_checked(monkeypatch):
    """--gpus lists existing GPUs once; pinning maps indices through an outer CUDA_VISIBLE_DEVICES."""
    assert parse_gpus(None, 3) == [0, 1, 2]
    assert parse_gpus("2,0", 4) == [2, 0]
    for bad in ("0,0", "a", "-1", "4"):
        with pytest.raises(UserError):
            parse_gpus(bad, 4)
    with pytest.raises(UserError, match="needs 2 GPU"):
        check_fits([Need("c", 2)], [0])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-a,GPU-b,GPU-c")
    assert cuda_visible([2, 0]) == "GPU-c,GPU-a"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert cuda_visible([1, 3]) == "1,3"


def test_executor_spec_merges_suite_and_command_line():
    """The suite's executor section names the engine and options; the command line overrides both."""
    section = {"name": "slurm", "slurm": {"partition": "gpu", "cpus": 4}, "ray": {"cpus": 2}}
    assert executor_spec(section, None, {"cpus": 8}, "s").options == {"partition": "gpu", "cpus": 8}
    assert executor_spec(section, "ray", {"address": None}, "s").options == {"cpus": 2}
    for bad in ({"name": "k8s"}, {"slurm": {"partitions": "x"}}, {"bogus": 1}, {"local": {"parallel": 0}}):
        with pytest.raises(UserError):
            executor_spec(bad, "slurm" if "slurm" in bad else None, {}, "s")


@pytest.mark.integration
def test_local_packs_cells_onto_disjoint_gpus(tmp_path):
    """On 4 (logical) GPUs, concurrent cells hold disjoint CUDA_VISIBLE_DEVICES, never more than 4 GPUs
    in all, each exactly its own count; the driver stores every record and releases every claim."""
    gpus = [1, 2, 1, 4, 1, 2]
    cells = [make_cell(i, gpus=k, sleep_s=1.5) for i, k in enumerate(gpus)]
    executor = LocalExecutor(gpus=[0, 1, 2, 3], target=targets.reports_devices)
    assert isinstance(executor, Executor)
    records = drive(executor, cells, tmp_path, None)
    assert sorted(r["cell_id"] for r in records) == sorted(c.cell_id for c in cells)
    for cell, record in zip(cells, sorted(records, key=lambda r: int(r["cell"]["label"][1:]))):
        assert len(devices_of(record)) == cell.gpus
        assert record["executor"]["name"] == "local" and record["executor"]["stored_at"] >= record["executor"]["ended_at"]
        assert json.loads(record_path(tmp_path, cell.suite, cell.cell_id).read_text())["status"] == "ok"
    pairs = overlapping(records)
    assert pairs, "cells never ran side by side"
    assert all(not (devices_of(a) & devices_of(b)) for a, b in pairs)
    assert not list((tmp_path / "claims" / "exec-test").glob("*.claim"))


@pytest.mark.integration
def test_local_cpu_cells_parallel_only_when_asked(tmp_path, monkeypatch):
    """CPU cells run one after another by default and side by side with parallel=2, which each record states,
    and each names the other as a zobench cell that ran on the host meanwhile."""
    monkeypatch.setenv("ZOBENCH_HOST_DIR", str(tmp_path / "host"))  # only this test's cells, not the machine's
    cells = [make_cell(i, device="cpu", sleep_s=1.0) for i in range(2)]
    serial = drive(LocalExecutor(gpus=[], target=targets.reports_devices), cells, tmp_path / "a", None)
    assert not overlapping(serial) and {r["executor"]["parallel"] for r in serial} == {1}
    side = drive(LocalExecutor(gpus=[], parallel=2, target=targets.reports_devices), cells, tmp_path / "b", None)
    assert overlapping(side) and {r["executor"]["parallel"] for r in side} == {2}
    assert {o["cell_id"] for o in side[0]["executor"]["cotenant_cells"]} == {side[1]["cell_id"]}


@pytest.mark.integration
def test_claimed_cells_are_not_run_and_finished_cells_resume(tmp_path):
    """A cell another live owner holds is not run; a rerun skips cells with an ok record."""
    cells = [make_cell(i, device="cpu", sleep_s=0.1) for i in range(2)]
    holder = try_claim(tmp_path, "exec-test", cells[0].cell_id, executor="slurm", job_id=None)
    first = drive(LocalExecutor(gpus=[], target=targets.reports_devices), cells, tmp_path, None)
    assert [r["cell_id"] for r in first] == [cells[1].cell_id]
    holder.release()
    second = drive(LocalExecutor(gpus=[], target=targets.reports_devices), cells, tmp_path, None)
    assert [r["cell_id"] for r in second] == [cells[0].cell_id]
    assert drive(LocalExecutor(gpus=[], target=targets.reports_devices), cells, tmp_path, None) == []


@pytest.mark.integration
def test_ctrl_c_stops_running_local_cells(tmp_path):
    """Ctrl-C in the driver ends the running cells' processes (no orphan finishes later), stores nothing
    and releases every claim."""
    started, marks = tmp_path / "started", tmp_path / "marks"
    started.mkdir(), marks.mkdir()
    cells = [make_cell(i, sleep_s=5, started_dir=str(started), marker_dir=str(marks)) for i in range(3)]

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 60
        while not list(started.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        drive(LocalExecutor(gpus=[0, 1], target=targets.sleeps_then_marks), cells, tmp_path / "r", None)
    time.sleep(6)  # past the cells' own sleep
    assert list(started.iterdir()) and not list(marks.iterdir())
    assert not list((tmp_path / "r").rglob("runs/**/*.json"))
    assert not list((tmp_path / "r" / "claims" / "exec-test").glob("*.claim"))


@pytest.mark.integration
def test_monitor_counts_other_processes_cpu_and_marks_contended():
    """CPU burned outside the cell's process tree during training is measured, and over the
    threshold the record is marked contended with the reason."""
    root = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        monitor = Monitor.launch(root.pid, None)
        monitor.mark("train")
        busy = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<2: pass"])
        busy.wait()
        monitor.mark("eval")
        stats = monitor.stop()
    finally:
        root.kill()
    train = stats["phases"]["train"]
    assert train["other_cpu_s"] >= 1.0 and train["wall_s"] >= 2.0
    record = {"metrics": {"train_other_cpu_s": train["other_cpu_s"], "train_wall_s": train["wall_s"]}, "memory": {}}
    assess(record)
    assert record["contended"] and "CPU cores busy" in record["contention"][0]
    quiet = {"metrics": {"train_other_cpu_s": 0.01, "train_wall_s": 2.0}, "memory": {"foreign_gpu_pids": []}}
    assess(quiet)
    assert quiet["contended"] is False


def test_status_reads_records_and_live_claims(tmp_path):
    """status: a stored ok record is done, an error record failed, a live claim running (with its job id);
    cancel leaves claims it cannot cancel (not Slurm) in place and names them."""
    from zobench.run.executors.status import cancel_suite, cell_states
    from zobench.results.store import write_record
    from zobench.run.worker import new_record

    done, failed, running = (make_cell(i, device="cpu") for i in range(3))
    for cell, status in ((done, "ok"), (failed, "error")):
        record = new_record(cell)
        record.update(status=status, executor={"name": "ray", "task_id": f"t{cell.label}"})
        write_record(tmp_path, record)
    claim = try_claim(tmp_path, "exec-test", running.cell_id, executor="local", job_id="vm:1:1")
    rows = {r["cell_id"]: r for r in cell_states(tmp_path, "exec-test")}
    assert (rows[done.cell_id]["state"], rows[done.cell_id]["status"], rows[done.cell_id]["job_id"]) == ("done", "ok", "tc0")
    assert rows[failed.cell_id]["state"] == "failed"
    assert (rows[running.cell_id]["state"], rows[running.cell_id]["job_id"]) == ("running", "vm:1:1")
    cancelled, others = cancel_suite(tmp_path, "exec-test")
    assert cancelled == [] and [o["cell_id"] for o in others] == [running.cell_id] and claim.owned()
    with pytest.raises(UserError):
        cell_states(tmp_path, "../etc")
