"""The training loop's measurements: divergence stops a cell, memory and step-time trackers measure real things."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from zobench.api import Tracker
from zobench.run.suite import Overrides, expand, load_suite
from zobench.measure.divergence import DivergenceTracker
from zobench.measure.step_time import StepTimeTracker
from zobench.run.worker import execute_cell


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
    record, _ = run_in_process(smoke_cell("ft", split_sizes={"train": 0, "dev": 8, "test": 8}))
    assert record["status"] == "error" and "train split is empty" in record["error"]


def test_divergence_tracker_counts_spikes_and_non_finite_losses():
    tracker = DivergenceTracker(spike_factor=3.0)
    tracker.start()
    for step, loss in enumerate([1.0, 1.1, 0.9, 1.0, 1.05, 5.0, 1.0, float("nan"), float("inf")]):
        tracker.after_step(step, loss)
    out = tracker.stop()
    assert [(e["step"], e["kind"]) for e in out["divergence"]] == [
        (5, "loss_spike"), (7, "non_finite_loss"), (8, "non_finite_loss")]
    assert out["divergence_events"] == 3


def test_cpu_peak_memory_moves_by_a_known_allocation_per_phase():
    """Calibration (zobench.measure.calibrate, as run on GPUs): a 256 MiB buffer held in the train phase raises that
    phase's kernel high-water mark and the monitor's RSS samples by 256 MiB ± 10%; the idle phase does not see it."""
    from zobench.measure.calibrate import calibrate

    size = 256 * 2**20
    result = calibrate("cpu", size)
    m, checks = result["metrics"], result["checks"]
    assert m["cpu_hwm_reset"], "this kernel refuses /proc/self/clear_refs; peaks would include earlier phases"
    assert set(checks) == {"cpu_hwm_bytes", "rss_sampled_peak_bytes"}
    for source, check in checks.items():
        assert check["available"] and abs(check["delta"] - size) <= 0.1 * size, (source, check)
    assert result["ok"]
    assert m["idle_cpu_hwm_bytes"] < m["train_cpu_hwm_bytes"] - 0.5 * size
    assert m["peak_mem_bytes"] == m["train_cpu_hwm_bytes"] and m["peak_mem_source"] == "cpu_vmhwm"
    assert {phase for _, phase, _ in result["rss_timeline"]} >= {"idle", "train"}


@pytest.mark.integration
def test_calibration_cli_writes_json_and_rejects_bad_input(tmp_path):
    """`python -m zobench.measure.calibrate` exits 0 and writes its verdicts when every source is within ±10%; bad input
    is one line on stderr and exit 2."""
    import json
    import subprocess
    import sys

    out = tmp_path / "calib.json"
    ok = subprocess.run([sys.executable, "-m", "zobench.measure.calibrate", "--device", "cpu", "--size-mib", "128",
                         "--out", str(out)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    written = json.loads(out.read_text())
    assert written["ok"] and written["size_bytes"] == 128 * 2**20 and "PASSED" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "zobench.measure.calibrate", "--device", "tpu"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "unknown device" in bad.stderr


@pytest.mark.gpu
def test_gpu_nvml_process_memory_moves_by_a_known_allocation():
    """On a CUDA machine: a 1 GiB buffer moves NVML process memory and torch allocated by 1 GiB ± 10%."""
    from zobench.measure.calibrate import calibrate

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (run `python -m zobench.measure.calibrate` there)")
    result = calibrate("cuda", 2**30)
    assert result["checks"]["torch_max_allocated_bytes"]["ok"], result["checks"]
    assert result["peak_mem_source"] in ("nvml_process", "nvml_device_minus_baseline")
    assert result["ok"], result["checks"]


def test_without_a_gpu_nvml_is_reported_not_available_and_nothing_crashes():
    """No fake NVML: on a machine without a GPU the record says why NVML figures are missing."""
    import os

    import pytest

    from zobench.measure.monitor import Monitor
    from zobench.measure.nvml import gpu_identity

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the real NVML path runs instead")
    identity = gpu_identity(torch.device("cuda"))
    assert identity["available"] is False and identity["reason"]
    monitor = Monitor.launch(os.getpid(), "GPU-00000000-0000-0000-0000-000000000000")
    assert isinstance(monitor, Tracker)
    measured = monitor.finish(failed=False)  # the Tracker protocol's end: its raw figures are its section
    stats = measured.details["monitor"]
    assert stats["nvml_available"] is False and "NVML not available" in stats["nvml_reason"]
    assert measured.series["rss"], "the RSS timeline still works without NVML"


def test_warmup_steps_are_timed_but_left_out_of_the_statistics():
    """The first warmup_steps are in the series, not in the median; tokens/s counts measured steps only."""
    import time

    timer = StepTimeTracker("cpu", warmup_steps=2)
    timer.start()
    for step, pause in enumerate([0.2, 0.15, 0.01, 0.01, 0.01]):
        timer.before_step(step)
        time.sleep(pause)
        timer.after_step(step, 0.0, tokens=100)
    out = timer.stop()
    assert len(timer.times) == 5 and out["warmup_steps"] == 2 and out["timed_steps"] == 3
    assert out["step_time_s"] < 0.05 and out["train_time_s"] > 0.35
    assert 100 / 0.05 < out["tokens_per_s"] < 100 / 0.009


def test_eval_loss_rebound_is_reported_once_per_rise():
    """A dev-loss rise of more than delta above the running minimum is one event; it re-arms at a new minimum."""
    tracker = DivergenceTracker(rebound_delta=0.3)
    events = [tracker.on_eval(step, loss) for step, loss in
              [(0, 1.0), (100, 0.8), (200, 1.0), (300, 1.2), (400, 1.3), (500, 0.7), (600, 1.05)]]
    kinds = [(step, e["kind"]) for step, new in zip(range(0, 700, 100), events) for e in new]
    assert kinds == [(300, "eval_loss_rebound"), (600, "eval_loss_rebound")]


def test_policy_stop_ends_the_cell_at_a_spike_and_continue_counts_it():
    """divergence_policy decides: 'stop' ends the cell as diverged at the first event; 'continue' only counts."""
    args = {"lr": 1e-3, "optimizer": "sgd", "weight_decay": 0.0, "momentum": 0.0}
    stop, _ = run_in_process(smoke_cell("ft", steps=9, args=args, divergence_policy="stop", spike_factor=0.5))
    cont, _ = run_in_process(smoke_cell("ft", steps=9, args=args, divergence_policy="continue", spike_factor=0.5))
    # spike_factor 0.5 flags any loss above half the running median: every step once 5 losses are known.
    assert stop["status"] == "diverged" and stop["metrics"]["steps_done"] == 6
    assert stop["divergence"][0] == {**stop["divergence"][0], "step": 5, "kind": "loss_spike"}
    assert cont["status"] == "ok" and cont["metrics"]["steps_done"] == 9 and cont["metrics"]["divergence_events"] == 4


def test_time_and_forwards_to_target_are_recorded_when_a_train_loss_target_is_met():
    """A reachable train-loss target records the step, forwards and training time at which it was met."""
    record, _ = run_in_process(smoke_cell("floor", steps=12, target_metric="train_loss", target_value=100.0))
    m = record["metrics"]
    assert m["steps_to_target"] == 10 and m["forwards_to_target"] == 20
    assert 0 < m["time_to_target_s"] <= m["train_time_s"]
    unreachable, _ = run_in_process(smoke_cell("floor", steps=12, target_metric="train_loss", target_value=0.0))
    assert "time_to_target_s" not in unreachable["metrics"]


def test_periodic_dev_eval_builds_a_dev_curve_outside_step_time():
    """eval_every adds dev points between steps; the curve starts at step 0 and ends at the last step."""
    record, _ = run_in_process(smoke_cell("mezo", steps=4, eval_every=2))
    assert [point[0] for point in record["series"]["dev"]] == [0, 2, 4]


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
