"""The one reader of records: which files are records, what their statuses mean, how cells
are keyed and how seeds are averaged. Reports, figures, the gate, asv and ``load_results``
all read through here, so they cannot disagree; each file is read once (``load_results`` keeps
every row's record, so the figures and the gate's step samples never reopen a file) (an ``oom`` cell's reached peak is never a
method's memory figure anywhere).

Reading is defensive because a results dir is shared, copied and interrupted:
- only regular files are read (a FIFO named ``x.json`` would block forever);
- a file that is unreadable, not JSON, not a zobench record, or of a ``schema_version``
  this zobench does not know is skipped with one warning line, and a count at the end;
- two records of the same (suite, cell id), e.g. a copy of a run nested in the results
  dir, are never averaged: the shallowest path is kept and the other is reported.
Usage: ``found = scan(Path("results"))``; ``found.records`` → [(path, record)].
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from zobench.api import SCHEMA_VERSION, STATUSES
from zobench.paths import shorten

OK_STATUSES = ("ok", "diverged")  # cells whose metrics are results
FAILED_STATUSES = ("error", "timeout")  # cells that measured nothing (oom reached a peak: that is a result)
FLOOR = "floor"  # the inference-only method every ratio is taken to
CELL_KEYS = ("suite", "model", "task", "label", "method", "seed", "dtype", "device")
Warn = Callable[[str], None]


class NotARecord(ValueError):
    """A file under a results dir that is no readable zobench record of a known schema."""


def warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def parse_record(text: str) -> dict[str, Any]:
    """A record from its JSON text, or NotARecord saying why not."""
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise NotARecord(f"not JSON ({str(exc)[:60]})") from None
    if not isinstance(record, dict) or "schema_version" not in record:
        raise NotARecord("not a zobench record (no schema_version)")
    if record["schema_version"] != SCHEMA_VERSION:
        raise NotARecord(f"unknown schema_version {shorten(record['schema_version'], 20)} (this zobench reads {SCHEMA_VERSION})")
    cell = record.get("cell")
    if not isinstance(cell, dict) or any(k not in cell for k in CELL_KEYS) or not isinstance(record.get("cell_id"), str):
        raise NotARecord("not a zobench record (no cell)")
    if record.get("status") not in STATUSES or not isinstance(record.get("metrics", {}), dict):
        raise NotARecord(f"not a zobench record (status {shorten(record.get('status'), 20)})")
    return record


def read_file(path: Path) -> dict[str, Any]:
    """Read one record file: regular files only (never blocks on a FIFO or device)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise NotARecord("not a regular file")
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotARecord(f"unreadable ({type(exc).__name__})") from None
    return parse_record(text)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when there is none readable (quietly: callers decide)."""
    try:
        return read_file(path)
    except NotARecord:
        return None


def cell_key(record: dict[str, Any]) -> tuple[str, str]:
    """What identifies a cell across runs: (suite, cell id)."""
    return str(record["cell"]["suite"]), record["cell_id"]


def unit_key(suite: str, model: str, task: str, label: str) -> str:
    """A method unit (the seeds of one label): ``suite/model--task--label``."""
    return f"{suite}/{model}--{task}--{label}"


def timed_step_times(record: dict[str, Any]) -> list[float]:
    """The record's per-step times of its timed steps: warm-up steps left out, as in its median."""
    warmup = int(record.get("metrics", {}).get("warmup_steps") or 0)
    return [t for t in record.get("series", {}).get("step_time_s", [])[warmup:] if t is not None]


def mean_over_seeds(values: Iterable[Any]) -> float:
    """Mean of the finite values (NaN when none): callers pass the OK_STATUSES rows only."""
    finite = [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


@dataclasses.dataclass
class Found:
    records: list[tuple[Path, dict[str, Any]]]
    skipped: int


def _candidates(path: Path) -> list[Path]:
    if not path.exists():
        return []
    if not path.is_dir():
        return [path]
    files = [p for p in path.rglob("*.json") if not p.name.startswith(".")]  # .x.json.tmp: a write under way
    # Shallowest first: the canonical <dir>/runs/<suite>/<cell>.json wins over a nested copy.
    return sorted(files, key=lambda p: (len(p.parts), str(p)))


def scan(path: Path, warn: Warn | None = warn_stderr) -> Found:
    """Every record under ``path`` (a results dir, a suite folder or one file), with a warning
    line for each file skipped and a count at the end."""
    say = warn or (lambda _message: None)
    records, seen, skipped = [], {}, 0
    for file in _candidates(Path(path)):
        try:
            record = read_file(file)
        except NotARecord as exc:
            say(f"skipped {file}: {exc}")
            skipped += 1
            continue
        key = cell_key(record)
        if key in seen:
            say(f"skipped {file}: a second record of cell {'/'.join(key)} (kept {seen[key]}; never averaged)")
            skipped += 1
            continue
        seen[key] = file
        records.append((file, record))
    if skipped:
        say(f"{skipped} file(s) under {path} skipped (see above)")
    return Found(records, skipped)
