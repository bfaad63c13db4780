"""Suite → cells → isolated runs → records on disk. The orchestration behind ``zobench run``.

Each cell is claimed before it runs (zobench.run.claims), so two runs on one results dir never
run a cell twice: a cell a live owner holds is skipped with one line.
Usage: ``run_cells(cells, results_dir, data_dir, force=False)``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from zobench.api import Cell, Executor, UserError
from zobench.run.executors.driver import drive
from zobench.run.executors.entry import failure_record  # noqa: F401  (kept importable from here)
from zobench.inspection import inspect_method
from zobench.models import check_model
from zobench.paths import shorten
from zobench.run.progress import Progress
from zobench.results.store import check_writable
from zobench.tasks import get_task
from zobench.run.worker import resolve_device


def check_device(device: str) -> None:
    """The device a suite names must exist on this host (``auto`` always does)."""
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{device}': no CUDA device on this host; valid: auto, cpu")
    if kind == "cuda" and index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise UserError(f"device '{device}': this host has cuda:0 to cuda:{torch.cuda.device_count() - 1}")


def check_builds(cells: list[Cell]) -> None:
    """Build every (method, args, model) on the meta device, as ``zobench inspect`` does, so a
    constructor's error (a rank that does not fit, a peft target that is not there) is bad input
    now rather than a failed cell after the model has loaded."""
    seen = set()
    for cell in cells:
        key = (cell.method, repr(sorted(cell.args.items())), cell.model)
        if key in seen:
            continue
        seen.add(key)
        try:
            inspect_method(cell.method, cell.model, cell.args)
        except UserError as exc:  # inspect's own message names the method and model
            raise UserError(f"suite {cell.suite}: method '{cell.label}' cannot be built: {exc}") from None
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"method '{cell.label}' ({cell.method}) cannot be built on {cell.model}: {first[:200]}") from None


def preflight(cells: list[Cell], data_dir: Path | None, results_dir: Path | None = None) -> None:
    """Fail on missing models, data or devices, unbuildable methods and an unwritable results
    dir before any cell runs (UserError), so nothing is written."""
    for device in sorted({c.device for c in cells}):
        check_device(resolve_device(device))
    for model in sorted({c.model for c in cells}):
        check_model(model)
    check_builds(cells)
    for task_name, sizes, seed in sorted({(c.task, tuple(sorted(c.split_sizes.items())), c.data_seed) for c in cells}):
        try:
            get_task(task_name).load(data_dir, dict(sizes), seed)
        except (OSError, ValueError, KeyError, IndexError, csv.Error) as exc:  # a corrupt or foreign data file
            detail = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            raise UserError(f"task '{task_name}': its data in {data_dir} cannot be read ({shorten(detail, 160)})") from None
    if results_dir is not None:
        check_writable(results_dir)


def run_cells(cells: list[Cell], results_dir: Path, data_dir: Path | None, force: bool = False,
              progress: Progress | None = None, executor: Executor | None = None,
              detach: bool = False) -> list[dict[str, Any]]:
    """Every cell through ``executor`` (default: local, one at a time); claims and records in executors.driver."""
    progress = progress or Progress(len(cells))
    if executor is None:
        from zobench.run.executors.local import LocalExecutor

        executor = LocalExecutor(on_start=progress.cell_started, on_message=progress.handle)
    return drive(executor, cells, results_dir, data_dir, force=force, progress=progress, detach=detach,
                 submit_started=executor.name != "local")
