"""Each cell runs in its own process; how the child ends becomes a status, never a parent crash."""

from __future__ import annotations

import time

import launcher_targets as targets

from zobench.launcher import run_isolated


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


def test_out_of_memory_is_classified_as_oom():
    """A CUDA OOM inside a cell is a result (status oom), not an error."""
    outcome = run_isolated(targets.cell_oom, None, timeout_s=60)
    assert outcome.result == {"status": "oom"}


def test_parent_does_not_busy_wait():
    """While a child sleeps, the parent uses almost no CPU (it blocks on the pipe and sentinel)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    run_isolated(targets.hangs, None, timeout_s=3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 1.0, f"parent used {cpu:.2f} s of CPU while waiting 3 s"
