"""Which other zobench cells ran on this host while a cell ran (provenance: co-tenancy).

Each running cell leaves a small file in a host-local folder (``$ZOBENCH_HOST_DIR``, else
``<tmp>/.zobench-cells-<uid>``) with its id, pid and start time, and marks its end there; at
its own end a cell lists the files whose interval overlaps its own. Any executor on the
host (local threads, Ray workers, Slurm jobs) sees the others, with no shared service.
Hand-written: psutil lists processes but cannot tell which of them are zobench cells.
Usage: ``mark = Cotenancy.enter(cell_id, suite); ...; others = mark.leave()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

KEEP_S = 24 * 3600  # ended entries older than this are cleaned up by the next cell


def host_dir() -> Path:
    folder = os.environ.get("ZOBENCH_HOST_DIR") or os.path.join(tempfile.gettempdir(), f".zobench-cells-{os.getuid()}")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cotenancy:
    def __init__(self, path: Path, info: dict[str, Any]):
        self.path, self.info = path, info

    @classmethod
    def enter(cls, cell_id: str, suite: str, executor: str) -> "Cotenancy":
        info = {"cell_id": cell_id, "suite": suite, "executor": executor, "pid": os.getpid(),
                "started": time.time(), "ended": None}
        path = host_dir() / f"{uuid.uuid4().hex}.json"
        _write(path, info)
        return cls(path, info)

    def leave(self) -> list[dict[str, Any]]:
        """Mark our end; the other cells whose run overlapped ours (cell id, suite, executor, pid)."""
        now = time.time()
        self.info["ended"] = now
        with contextlib.suppress(OSError):
            _write(self.path, self.info)
        others = []
        for path in host_dir().glob("*.json"):
            if path == self.path:
                continue
            try:
                other = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            ended = other.get("ended")
            if ended is None and not _pid_alive(int(other.get("pid", -1))):
                ended = other.get("started")  # its process died without marking an end
            if ended is not None and now - ended > KEEP_S:
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            if other.get("started", now) < now and (ended is None or ended > self.info["started"]):
                others.append({k: other.get(k) for k in ("cell_id", "suite", "executor", "pid")})
        return sorted(others, key=lambda o: (str(o["suite"]), str(o["cell_id"])))
