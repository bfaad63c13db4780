"""The record one cell fills, typed: a dataclass serialised to the records' JSON schema (SCHEMA_VERSION).

The worker fills it as the cell runs, so a crash still leaves what was measured. ``to_json`` writes
the schema records have always had: the skeleton (``schema_version``, ``cell_id``, ``cell``,
``status``, ``error``, ``metrics``, ``series``) always, every other section only once it is filled,
and the trackers' sections (``divergence``, ``memory``) at the top level under their own names.
Live objects (trackers, the best-on-dev checkpoint) are not part of it: the worker holds them.
Usage: ``record = CellRecord.new(cell)``; ``record.to_json()`` → the dict the store writes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from zobench.api import SCHEMA_VERSION, Cell, Measured

OPTIONAL = ("env", "model_info", "data", "method_info", "traceback")  # written once filled


@dataclasses.dataclass
class CellRecord:
    cell_id: str
    cell: dict[str, Any]  # Cell.to_dict()
    status: str | None = None  # one of api.STATUSES once the cell ends; None while it runs
    error: str | None = None  # the exception's last line, for error and oom
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)  # flat: what reports tabulate
    series: dict[str, list] = dataclasses.field(default_factory=dict)  # per step (loss, forwards) or per eval (dev)
    env: dict[str, Any] | None = None  # provenance, dtype, the GPU(s) held
    model_info: dict[str, Any] | None = None  # zobench.models.load_model's description
    data: dict[str, Any] | None = None  # task version, source, split sizes, batch plan
    method_info: dict[str, Any] | None = None  # name, version, variant, details, args
    traceback: str | None = None  # after an exception
    warnings: list[str] = dataclasses.field(default_factory=list)  # written only when there are some
    sections: dict[str, Any] = dataclasses.field(default_factory=dict)  # the trackers' (Measured.details)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def new(cls, cell: Cell) -> CellRecord:
        """The skeleton every outcome fills: ok, diverged, oom, error or timeout."""
        return cls(cell_id=cell.cell_id, cell=cell.to_dict())

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def add(self, measured: Measured) -> None:
        """Fold one tracker's figures in."""
        self.metrics.update(measured.metrics)
        self.series.update(measured.series)
        self.sections.update(measured.details)
        self.warnings += measured.warnings

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": self.schema_version, "cell_id": self.cell_id, "cell": self.cell,
                               "status": self.status, "error": self.error, "metrics": self.metrics,
                               "series": self.series}
        for name in OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.warnings:
            out["warnings"] = list(self.warnings)
        own = {f.name for f in dataclasses.fields(self)}
        for name, section in self.sections.items():
            if name in own:
                raise ValueError(f"a tracker's section {name!r} would overwrite the record's own")
            out[name] = section
        return out
