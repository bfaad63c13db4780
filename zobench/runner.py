"""Suite → cells → isolated runs → records on disk. The orchestration behind ``zobench run``.

Usage: ``run_cells(cells, results_dir, data_dir, force=False)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zobench.api import Cell, Executor
from zobench.executors.driver import drive
from zobench.executors.entry import failure_record  # noqa: F401  (kept importable from here)
from zobench.models import check_model
from zobench.progress import Progress
from zobench.tasks import get_task


def preflight(cells: list[Cell], data_dir: Path | None) -> None:
    """Fail on missing models or data before any cell runs (UserError), so nothing is written."""
    for model in sorted({c.model for c in cells}):
        check_model(model)
    for task_name, sizes, seed in sorted({(c.task, tuple(sorted(c.split_sizes.items())), c.data_seed) for c in cells}):
        get_task(task_name).load(data_dir, dict(sizes), seed)


def run_cells(cells: list[Cell], results_dir: Path, data_dir: Path | None, force: bool = False,
              progress: Progress | None = None, executor: Executor | None = None,
              detach: bool = False) -> list[dict[str, Any]]:
    """Every cell through ``executor`` (default: local, one at a time); claims and records in executors.driver."""
    progress = progress or Progress(len(cells))
    if executor is None:
        from zobench.executors.local import LocalExecutor

        executor = LocalExecutor(on_start=progress.cell_started, on_message=progress.handle)
    return drive(executor, cells, results_dir, data_dir, force=force, progress=progress, detach=detach,
                 submit_started=executor.name != "local")
