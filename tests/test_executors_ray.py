"""The Ray executor against a real local Ray with 4 logical GPUs on this CPU machine:
packing, disjoint devices, records stored by the driver, a lost worker retried once,
Ctrl-C cancelling outstanding tasks, resume. Select with ``-m ray``."""

from __future__ import annotations

import _thread
import threading
import time
from pathlib import Path

import pytest

import ray  # in the test extra: a missing Ray fails these tests, never skips them

import launcher_targets as targets
from executor_cells import devices_of, make_cell, overlapping
from zobench.run.executors.driver import drive
from zobench.run.executors.ray import RayExecutor
from zobench.results.store import record_path

pytestmark = [pytest.mark.integration, pytest.mark.ray]
TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture(scope="module")
def local_ray():
    """Logical resources: 2 CPUs, 4 GPUs that exist only as Ray's bookkeeping."""
    ray.init(num_cpus=2, num_gpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": TESTS}})
    yield
    ray.shutdown()


def test_ray_packs_by_gpu_count_with_disjoint_devices(local_ray, tmp_path):
    """Each task gets exactly its GPU count; tasks running together never share a device nor exceed 4;
    the driver stores every record (task ids in the executor section) and a rerun submits nothing."""
    gpus = [2, 1, 1, 2, 4]
    cells = [make_cell(i, gpus=k, sleep_s=2.0) for i, k in enumerate(gpus)]
    records = drive(RayExecutor(cpus=0.25, target=targets.reports_devices), cells, tmp_path, None)
    assert len(records) == len(cells)
    for record in records:
        assert len(devices_of(record)) == record["cell"].get("gpus", 1)
        assert record["executor"]["name"] == "ray" and record["executor"]["task_id"]
        assert record_path(tmp_path, "exec-test", record["cell_id"]).is_file()
    pairs = overlapping(records)
    assert pairs, "no two tasks ran at once"
    assert all(not (devices_of(a) & devices_of(b)) for a, b in pairs)
    assert drive(RayExecutor(target=targets.reports_devices), cells, tmp_path, None) == []


def test_lost_worker_is_retried_once_then_recorded(local_ray, tmp_path):
    """A cell whose worker dies once succeeds on the retry; one whose worker dies twice is an error
    record naming Ray's reason, written by the driver."""
    once, always = tmp_path / "once", tmp_path / "always"
    cells = [make_cell(0, device="cpu", attempts_file=str(once), deaths=1),
             make_cell(1, device="cpu", attempts_file=str(always), deaths=99)]
    records = {r["cell"]["label"]: r for r in drive(RayExecutor(target=targets.kills_its_worker), cells, tmp_path / "r", None)}
    assert len(once.read_text().splitlines()) == 2 and records["c0"]["status"] == "ok"
    assert len(always.read_text().splitlines()) == 2
    assert records["c1"]["status"] == "error" and "retry" in records["c1"]["error"]
    assert record_path(tmp_path / "r", "exec-test", records["c1"]["cell_id"]).is_file()


def test_ctrl_c_cancels_outstanding_tasks(local_ray, tmp_path):
    """Ctrl-C in the driver cancels running and queued tasks: no cell finishes, nothing is stored,
    no claim is left behind."""
    started, marks = tmp_path / "started", tmp_path / "marks"
    started.mkdir(), marks.mkdir()
    cells = [make_cell(i, device="cpu", sleep_s=6, started_dir=str(started), marker_dir=str(marks)) for i in range(3)]

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 60
        while not list(started.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        drive(RayExecutor(target=targets.sleeps_then_marks), cells, tmp_path / "r", None)
    time.sleep(8)  # past the cells' own sleep: a surviving cell would have left its marker
    assert list(started.iterdir()) and not list(marks.iterdir())
    assert not list((tmp_path / "r").rglob("runs/**/*.json"))
    assert not list((tmp_path / "r" / "claims" / "exec-test").glob("*.claim"))
