"""The cell's structure: the typed record keeps the records' schema, and a tracker is one file plus one line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from zobench.api import Measured, Tracker
from zobench.run.cell_record import CellRecord
from zobench.run.suite import Overrides, expand, load_suite
from zobench.measure import registry
from zobench.run.worker import execute_cell

KEYS = json.loads((Path(__file__).parent / "record_keys_mezo_cpu.json").read_text())


def smoke_cell(method: str, **changes):
    cell = expand(load_suite("smoke"), Overrides(methods=[method]))[0]
    return dataclasses.replace(cell, device="cpu", **changes)


class CountsSteps:
    """A tracker as a newcomer writes one: it counts the steps and evaluations it saw."""

    def __init__(self) -> None:
        self.steps = self.evals = 0
        self.phases: list[str] = []

    @classmethod
    def for_cell(cls, context) -> CountsSteps:
        return cls()

    def phase(self, name: str) -> None:
        self.phases.append(name)

    def start(self, training) -> None:
        pass

    def before_step(self, step: int) -> None:
        pass

    def after_step(self, step: int, loss: float, tokens: int) -> list:
        self.steps += 1
        return []

    def on_eval(self, step: int, dev_loss, params) -> list:
        self.evals += 1
        return []

    def finish(self, failed: bool) -> Measured:
        return Measured(metrics={"counted_steps": self.steps, "counted_evals": self.evals,
                                 "counted_phases": "/".join(self.phases)})


def test_a_tracker_registered_with_one_line_shows_up_in_the_cells_metrics(monkeypatch):
    """One line in the registry is all it takes: the cell calls the new tracker at every step, every θ read
    (step 0, the dev evaluation at step 2, after training) and phase, and its metrics land in the record."""
    assert isinstance(CountsSteps(), Tracker)
    monkeypatch.setattr(registry, "TRACKERS", [CountsSteps.for_cell, *registry.TRACKERS])
    record = execute_cell({"cell": smoke_cell("mezo", steps=4, eval_every=2).to_dict(), "data_dir": None},
                          lambda kind, data: None)
    assert record["status"] == "ok", record.get("traceback")
    m = record["metrics"]
    assert m["counted_steps"] == 4 == m["steps_done"] and m["counted_evals"] == 3
    assert m["counted_phases"] == "load/eval/train/eval/train/eval"
    assert m["step_time_s"] > 0 and m["peak_mem_bytes"] > 0  # the registered trackers still ran


def test_the_typed_record_serialises_to_the_schema_records_had():
    """A tiny CPU cell's record has exactly the keys the worker wrote before the typed record (committed list),
    at the top level and in metrics, series, data, method_info and memory."""
    record = execute_cell({"cell": smoke_cell("mezo", steps=4, eval_every=2).to_dict(), "data_dir": None},
                          lambda kind, data: None)
    assert record["status"] == "ok", record.get("traceback")
    assert sorted(record) == KEYS["record"]
    for section in ("metrics", "series", "data", "method_info", "memory"):
        assert sorted(record[section]) == KEYS[section], section


def test_a_tracker_section_may_not_overwrite_the_records_own():
    """A tracker's details become top-level sections; one named like a record field is refused, not merged."""
    cell = smoke_cell("floor")
    record = CellRecord.new(cell)
    record.add(Measured(details={"energy": {"joules": 1.0}}))
    assert record.to_json()["energy"] == {"joules": 1.0} and "warnings" not in record.to_json()
    record.add(Measured(details={"metrics": {}}))
    with pytest.raises(ValueError, match="overwrite"):
        record.to_json()
