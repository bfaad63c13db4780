"""The Markdown report shows what an out-of-memory cell reached, not a blank."""

from __future__ import annotations

from zobench.results.report import markdown_report
from zobench.results.store import load_results, write_record
from zobench.run.suite import Overrides, expand, load_suite
from zobench.run.worker import new_record


def test_an_oom_cell_shows_the_memory_it_reached(tmp_path):
    """An oom cell has no ok peak to average, so its row says `oom at <peak reached>`; ok cells keep their peak,
    and the oom cell gets no ratio to the floor (it is a lower bound, not a measurement of the method's need)."""
    floor, ft = expand(load_suite("smoke"), Overrides(methods=["floor", "ft"]))
    ok = new_record(floor)
    ok.update(status="ok", metrics={"peak_mem_bytes": 14 * 2**30, "peak_mem_source": "nvml_process",
                                    "step_time_s": 0.1, "forwards_per_step": 2})
    oom = new_record(ft)
    oom.update(status="oom", error="torch.OutOfMemoryError: CUDA out of memory.",
               metrics={"peak_mem_bytes": 79 * 2**30, "peak_mem_source": "nvml_process", "forwards_per_step": 1})
    for record in (ok, oom):
        write_record(tmp_path, record)
    rows = {line.split(" | ")[0]: line for line in markdown_report(load_results(tmp_path)).splitlines()
            if line.startswith("| floor") or line.startswith("| ft")}
    assert "| oom 1 | oom at 79.0 GiB | - |" in rows["| ft"]
    assert "| ok 1 | 14.0 GiB | 1.00× |" in rows["| floor"]


def test_contended_timings_are_flagged(tmp_path):
    """A cell whose record says contended gets † on its step time and the footnote says why; others do not."""
    floor, mezo = expand(load_suite("smoke"), Overrides(methods=["floor", "mezo"]))
    for cell, contended in ((floor, False), (mezo, True)):
        record = new_record(cell)
        record.update(status="ok", contended=contended,
                      metrics={"peak_mem_bytes": 2**30, "peak_mem_source": "cpu_vmhwm", "step_time_s": 0.2,
                               "forwards_per_step": 2})
        write_record(tmp_path, record)
    text = markdown_report(load_results(tmp_path))
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith(("| floor", "| mezo"))}
    assert "200 ms †" in rows["| mezo"] and "†" not in rows["| floor"]
    assert "contended cell" in text
