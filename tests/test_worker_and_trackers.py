"""The training loop's measurements: divergence stops a cell, memory and step-time trackers measure real things."""

from __future__ import annotations

import dataclasses
import math

import torch

from zobench.suite import Overrides, expand, load_suite
from zobench.trackers.divergence import DivergenceTracker
from zobench.trackers.memory import MemoryTracker
from zobench.trackers.step_time import StepTimeTracker
from zobench.worker import execute_cell


def smoke_cell(method: str, **changes):
    cell = expand(load_suite("smoke"), Overrides(methods=[method]))[0]
    return dataclasses.replace(cell, **changes)


def run_in_process(cell) -> tuple[dict, list]:
    messages = []
    record = execute_cell({"cell": cell.to_dict(), "data_dir": None}, lambda k, d: messages.append((k, d)))
    return record, messages


def test_non_finite_loss_ends_the_cell_as_diverged():
    """A runaway learning rate gives a non-finite loss; the cell stops there with status diverged."""
    cell = smoke_cell("ft", steps=20, args={"lr": 1e30, "optimizer": "sgd", "weight_decay": 0.0, "momentum": 0.0})
    record, _ = run_in_process(cell)
    assert record["status"] == "diverged"
    events = record["divergence"]
    assert events and events[-1]["kind"] == "non_finite_loss"
    assert record["metrics"]["steps_done"] == events[-1]["step"] + 1 < 20


def test_ok_cell_reports_progress_and_metrics():
    """Each step sends loss, step time and peak memory so far; the record has the documented metrics."""
    record, messages = run_in_process(smoke_cell("ft"))
    assert record["status"] == "ok", record.get("traceback")
    steps = [d for k, d in messages if k == "step"]
    assert [d["step"] for d in steps] == [1, 2, 3]
    assert all(d["step_time_s"] > 0 and d["peak_mem_bytes"] > 0 for d in steps)
    m = record["metrics"]
    for key in ("accuracy", "step0_accuracy", "dev_accuracy", "peak_mem_bytes", "step_time_s", "forwards_total",
                "trainable_params", "divergence_events"):
        assert m[key] is not None and not (isinstance(m[key], float) and math.isnan(m[key])), key
    assert len(record["series"]["loss"]) == 3 and m["forwards_total"] == 3


def test_a_crash_in_the_cell_is_recorded_as_error_with_the_message():
    """An exception inside the cell becomes status error with its message, not a lost record."""
    record, _ = run_in_process(smoke_cell("ft", batch_size=10_000))
    assert record["status"] == "error" and "fewer than batch_size" in record["error"]


def test_divergence_tracker_counts_spikes_and_non_finite_losses():
    tracker = DivergenceTracker(spike_factor=3.0)
    tracker.start()
    for step, loss in enumerate([1.0, 1.1, 0.9, 1.0, 1.05, 5.0, 1.0, float("nan"), float("inf")]):
        tracker.after_step(step, loss)
    out = tracker.stop()
    assert [(e["step"], e["kind"]) for e in out["divergence"]] == [
        (5, "loss_spike"), (7, "non_finite_loss"), (8, "non_finite_loss")]
    assert out["divergence_events"] == 3


def test_cpu_peak_memory_moves_by_a_known_allocation():
    """Calibration: a 256 MiB buffer allocated during training raises the CPU peak by 256 MiB ± 10%."""
    tracker = MemoryTracker("cpu")
    tracker.start()
    assert tracker.hwm_was_reset, "this kernel refuses /proc/self/clear_refs; the peak would include load"
    baseline = tracker.peak_so_far()
    buffer = torch.ones(64 * 1024 * 1024)  # 256 MiB of fp32, every page touched
    peak = tracker.stop()["peak_mem_bytes"]
    del buffer
    assert abs((peak - baseline) - 256 * 2**20) <= 0.1 * 256 * 2**20


def test_step_timer_times_only_the_bracketed_region():
    """Only the time between before_step and after_step counts as step time."""
    import time

    timer = StepTimeTracker("cpu")
    timer.start()
    for step in range(3):
        timer.before_step(step)
        time.sleep(0.02)
        timer.after_step(step, 0.0)
        time.sleep(0.05)  # outside the step: must not count
    out = timer.stop()
    assert 0.018 <= out["step_time_s"] < 0.045
