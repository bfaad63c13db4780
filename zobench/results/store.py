"""Records on disk: one JSON file per cell at ``<results_dir>/runs/<suite>/<cell_id>.json``.

Writes are atomic (temp file in the same folder, fsync, rename), so Ctrl-C, a kill or a
crash in one cell can never leave another cell's record half-written.
Usage: ``write_record(results_dir, record)``; ``load_results("results")`` → DataFrame.
"""

from __future__ import annotations

import json
import contextlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from zobench.api import Cell, UserError
from zobench.paths import checked_child, shorten
from zobench.results.records import read_record, scan

RESULT_COLUMNS = [
    "suite", "model", "task", "method", "label", "seed", "status", "accuracy", "dev_accuracy",
    "step0_accuracy", "step0_dev_accuracy", "best_accuracy", "best_step", "peak_mem_bytes", "peak_mem_source", "step_time_s",
    "forwards_per_step", "forwards_total", "steps_done", "divergence_events", "trainable_params",
    "synthetic", "dtype", "device", "cell_id", "git_sha", "path",
]
RECORD_COLUMN = "record"  # load_results' last column: the record itself, as the reader read it


WRITE_ERROR_EXIT = 3  # the CLI's exit code when results cannot be written (full disk, read-only, ...)


class WriteError(Exception):
    """Results could not be written: the CLI prints one line and exits WRITE_ERROR_EXIT."""


def record_path(results_dir: Path, suite: str, cell_id: str) -> Path:
    """Where a cell's record lives; the names were checked, and the path is checked again here."""
    return checked_child(Path(results_dir) / "runs", suite, f"{cell_id}.json")


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set straight back
    os.umask(mask)
    return mask


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write and remove a probe file in it, before the first cell runs."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"results dir {shorten(str(folder))} is a file, not a folder; pass another --results-dir")
    probe = folder / f".zobench-probe-{os.getpid()}"
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # removed again if the probe fails
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"x" * 4096)  # a page, so a full disk fails here rather than on the first record
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        for path in (probe, *created):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        raise UserError(f"results dir {shorten(str(folder))} is not writable: {exc.strerror or exc}") from None


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, with the mode a plain open() would give (the umask's).

    An OSError (full disk, read-only, a folder in the way) becomes WriteError naming the path;
    the old file, if any, is left as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600: a shared results dir must stay readable
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise WriteError(f"cannot write {shorten(str(path))}: {exc.strerror or exc}") from None
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    path = record_path(results_dir, record["cell"]["suite"], record["cell_id"])
    atomic_write_text(path, json.dumps(_clean(record), indent=1, sort_keys=True) + "\n")
    return path


def is_done(results_dir: Path, cell: Cell) -> bool:
    """Resume rule: a stored ``ok`` record for exactly this cell configuration."""
    record = read_record(record_path(results_dir, cell.suite, cell.cell_id))
    return bool(record) and record.get("status") == "ok" and record.get("cell") == _clean(cell.to_dict())


def iter_records(path: Path, warn=None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The readable records under ``path`` (zobench.results.records.scan; ``warn`` gets its skip lines)."""
    yield from scan(Path(path), warn).records


def flatten(record: dict[str, Any], path: Path | None = None) -> dict[str, Any]:
    """One row: the documented columns, then every scalar metric (per-phase memory, energy, ...)."""
    cell, metrics = record["cell"], record.get("metrics", {})
    env, data = record.get("env", {}), record.get("data", {})
    row = {k: metrics.get(k) for k in RESULT_COLUMNS}
    row.update({k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool)) or v is None})
    gpu = env.get("gpu", {})
    row.update(gpu_name=gpu.get("name"), gpu_uuid=gpu.get("uuid"), nvml_available=record.get("memory", {}).get("nvml_available"),
               method_variant=record.get("method_info", {}).get("variant"), warnings=len(record.get("warnings", [])),
               contended=record.get("contended"), executor=record.get("executor", {}).get("name"))
    row.update(suite=cell["suite"], model=cell["model"], task=cell["task"], method=cell["method"],
               label=cell["label"], seed=cell["seed"], status=record.get("status"),
               synthetic=data.get("synthetic"), dtype=cell["dtype"], device=env.get("device", cell["device"]),
               cell_id=record["cell_id"], git_sha=env.get("git_sha"), path=str(path) if path else None,
               # to tell "target not reached" (no forwards_to_target) from "no target set"
               target_metric=cell.get("target_metric"))
    return row


def load_results(path: str | os.PathLike, warn="stderr"):
    """All records under ``path`` (a results dir, a suite folder or one file) as a DataFrame.

    Files that are no readable record are skipped with a warning line each on stderr
    (``warn=None``: quietly; or a callable that gets the lines). The last column, ``record``,
    holds each row's record as read (its series and events, for the figures and the gate):
    a file is read once, never again through the ``path`` column."""
    import pandas as pd

    from zobench.results.records import warn_stderr

    found = scan(Path(path), warn_stderr if warn == "stderr" else warn).records
    rows = [flatten(record, file) for file, record in found]
    extra = sorted({k for row in rows for k in row} - set(RESULT_COLUMNS) - {RECORD_COLUMN})
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS + extra)
    df[RECORD_COLUMN] = pd.Series([record for _, record in found], index=df.index, dtype=object)
    return df
