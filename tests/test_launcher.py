"""Each cell runs in its own process; how the child ends becomes a status, never a parent crash."""

from __future__ import annotations

import dataclasses
import time

import launcher_targets as targets
import pytest

from zobench.run.executors.entry import run_cell
from zobench.run.launcher import run_isolated
from zobench.run.suite import Overrides, expand, load_suite

pytestmark = pytest.mark.integration  # every test here spawns the cell's process


def test_result_and_messages_come_back():
    """A child's result and its progress messages reach the parent."""
    seen = []
    outcome = run_isolated(targets.returns, {"x": 1}, timeout_s=60, on_message=lambda k, d: seen.append((k, d)))
    assert outcome.status == "ok" and outcome.result == {"echo": {"x": 1}}
    assert seen == [("step", {"n": 1})]
    assert outcome.exitcode == 0


def test_child_that_raises_is_an_error_with_its_message():
    """An exception in the child is status error carrying the message."""
    outcome = run_isolated(targets.raises, None, timeout_s=60)
    assert outcome.status == "error"
    assert "boom from the child" in outcome.error


def test_child_that_hangs_times_out_and_is_stopped():
    """A hung child is killed at its timeout; the parent waits no longer than that (plus spawn time)."""
    t0 = time.monotonic()
    outcome = run_isolated(targets.hangs, None, timeout_s=3)
    assert outcome.status == "timeout"
    assert time.monotonic() - t0 < 30


def test_child_killed_by_a_signal_is_an_error_naming_the_signal():
    """A child that dies without a result (SIGKILL, OOM killer) is an error naming the signal."""
    outcome = run_isolated(targets.killed, None, timeout_s=60)
    assert outcome.status == "error"
    assert "SIGKILL" in outcome.error


@pytest.mark.parametrize("raised, status", [("oom", "oom"), ("value", "error")])
def test_out_of_memory_in_a_cells_step_is_a_result(raised, status):
    """An OOM raised inside a real cell's step (the launcher, the worker, the executors' entry) ends as a
    record with status oom, its message and the memory reached so far; any other exception is an error."""
    cell = dataclasses.replace(expand(load_suite("smoke"), Overrides(methods=["floor"]))[0], monitor=False)
    payload = {"cell": cell.to_dict(), "data_dir": None, "raise": raised}
    record = run_cell(payload, {"name": "local"}, target=targets.cell_whose_step_fails)
    assert record["status"] == status, record.get("error")
    assert ("out of memory" in record["error"]) == (raised == "oom")
    assert record["metrics"]["peak_mem_bytes"] > 0 and record["executor"]["name"] == "local"
    assert "step0_accuracy" in record["metrics"] and "steps_done" not in record["metrics"]  # it failed in the first step


def test_parent_does_not_busy_wait():
    """While a child sleeps, the parent uses almost no CPU (it blocks on the pipe and sentinel)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    run_isolated(targets.hangs, None, timeout_s=3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 1.0, f"parent used {cpu:.2f} s of CPU while waiting 3 s"
