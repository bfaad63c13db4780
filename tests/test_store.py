"""Records are written atomically, read back into a DataFrame, and drive resume."""

from __future__ import annotations

import json

import pandas as pd

from zobench.results.store import is_done, load_results, read_record, record_path, write_record
from zobench.run.suite import Overrides, expand, load_suite
from zobench.run.worker import new_record

REQUIRED = ["suite", "model", "task", "method", "seed", "status", "accuracy", "peak_mem_bytes", "peak_mem_source",
            "step_time_s", "forwards_per_step", "divergence_events", "trainable_params"]


def a_cell():
    return expand(load_suite("smoke"))[1]


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    """A write leaves exactly the record file, valid JSON even with NaN metrics."""
    record = new_record(a_cell())
    record.update(status="ok", metrics={"accuracy": float("nan"), "peak_mem_bytes": 10})
    path = write_record(tmp_path, record)
    assert path == record_path(tmp_path, "smoke", record["cell_id"])
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    stored = json.loads(path.read_text())
    assert stored["metrics"]["accuracy"] is None  # NaN is stored as null, valid JSON


def test_a_half_written_file_is_ignored_not_fatal(tmp_path):
    """A truncated file (from a foreign writer) is neither resumed from nor loaded."""
    cell = a_cell()
    path = record_path(tmp_path, cell.suite, cell.cell_id)
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "cell": ')
    assert read_record(path) is None
    assert not is_done(tmp_path, cell)
    assert load_results(tmp_path).empty


def test_resume_needs_an_ok_record_for_the_same_configuration(tmp_path):
    """Only an ok record of the identical cell configuration lets a cell be skipped."""
    cell = a_cell()
    record = new_record(cell)
    record["status"] = "error"
    write_record(tmp_path, record)
    assert not is_done(tmp_path, cell)
    record["status"] = "ok"
    write_record(tmp_path, record)
    assert is_done(tmp_path, cell)
    changed = expand(load_suite("smoke"), Overrides(steps=99))[1]
    assert changed.cell_id == cell.cell_id and not is_done(tmp_path, changed)


def test_load_results_has_the_documented_columns(tmp_path):
    """load_results returns one row per record: the documented columns first, each read from the
    record's cell, status and metrics (None where the record has no value), then the record's other
    scalar metrics as extra columns."""
    record = new_record(a_cell())
    record.update(status="ok", metrics={"accuracy": 0.75, "peak_mem_bytes": 123, "peak_mem_source": "x",
                                        "step_time_s": 0.5, "forwards_per_step": 2, "divergence_events": 0,
                                        "trainable_params": 9, "forwards_to_target": 40})
    write_record(tmp_path, record)
    df = load_results(tmp_path)
    assert len(df) == 1 and set(REQUIRED) <= set(df.columns)
    row = df.iloc[0]
    expected = {"suite": "smoke", "model": "random:tiny-llama", "task": "synthetic", "method": "mezo", "seed": 0,
                "status": "ok", "accuracy": 0.75, "peak_mem_bytes": 123, "peak_mem_source": "x", "step_time_s": 0.5,
                "forwards_per_step": 2, "divergence_events": 0, "trainable_params": 9}
    assert {k: row[k] for k in REQUIRED} == expected
    assert pd.isna(row["dev_accuracy"]) and row["forwards_to_target"] == 40
    assert list(df.columns).index("forwards_to_target") > max(list(df.columns).index(k) for k in REQUIRED)
