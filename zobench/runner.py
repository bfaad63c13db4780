"""Suite → cells → isolated runs → records on disk. The orchestration behind ``zobench run``.

Usage: ``run_cells(cells, results_dir, data_dir, force=False)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zobench.api import Cell
from zobench.launcher import run_isolated
from zobench.models import check_model
from zobench.progress import Progress
from zobench.store import is_done, write_record
from zobench.tasks import get_task
from zobench.worker import execute_cell, new_record


def preflight(cells: list[Cell], data_dir: Path | None) -> None:
    """Fail on missing models or data before any cell runs (UserError), so nothing is written."""
    for model in sorted({c.model for c in cells}):
        check_model(model)
    for task_name, sizes, seed in sorted({(c.task, tuple(sorted(c.split_sizes.items())), c.data_seed) for c in cells}):
        get_task(task_name).load(data_dir, dict(sizes), seed)


def failure_record(cell: Cell, status: str, error: str | None) -> dict[str, Any]:
    record = new_record(cell)
    record.update(status=status, error=error)
    return record


def run_cells(cells: list[Cell], results_dir: Path, data_dir: Path | None, force: bool = False,
              progress: Progress | None = None) -> list[dict[str, Any]]:
    progress = progress or Progress(len(cells))
    records = []
    for cell in cells:
        if not force and is_done(results_dir, cell):
            progress.skipped(cell.cell_id)
            continue
        progress.cell_started(cell.cell_id)
        payload = {"cell": cell.to_dict(), "data_dir": str(data_dir) if data_dir else None}
        outcome = run_isolated(execute_cell, payload, cell.timeout_s, on_message=progress.handle)
        record = outcome.result if outcome.status == "ok" else failure_record(cell, outcome.status, outcome.error)
        write_record(results_dir, record)
        progress.cell_finished(record)
        records.append(record)
    return records
