"""Per-cell claims: at most one live owner runs a cell, across runs, processes and hosts.

A claim is a small JSON file at ``<results_dir>/claims/<suite>/<cell_id>.claim``, created
with ``O_CREAT | O_EXCL`` so exactly one of several racing owners gets it (also on NFS v3+,
where exclusive create is atomic). It holds the owner's host, pid, a run token, the start
time and a heartbeat the owner refreshes while the cell runs; executors add their job or
task id. Every executor (local, Ray, Slurm) claims the same way, so two ``zobench run``s on
one results dir never run a cell twice, and a rerun never resubmits a queued Slurm job.

A claim is **stale**, and may be taken over, when its owner is provably gone: the same
host and a pid that no longer exists, or a heartbeat older than ``stale_after_s``; an
executor may add its own liveness check (a Slurm job id that ``squeue`` no longer knows).
Taking over renames the stale file away first: ``rename`` is atomic, so of two takers
only one succeeds and the other sees the new owner's claim.

No library does this for a plain results directory (filelock's locks are held by an open
descriptor, so they cannot outlive the driver of a detached Slurm job, nor carry a job id),
hence the hand-written file protocol.
Usage::

    claim = try_claim(results_dir, suite, cell_id, executor="local")
    if isinstance(claim, Claim):
        with claim.heartbeat():
            ...run the cell...
        claim.release()
    else:
        print("held by", claim)   # the live holder's info (a dict)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from zobench.paths import checked_child

STALE_AFTER_S = 600.0  # no heartbeat for 10 minutes: the owner is gone (beats come every 30 s)
HEARTBEAT_S = 30.0
Liveness = Callable[[dict[str, Any]], "bool | None"]  # True alive, False gone, None: cannot tell


def claim_path(results_dir: Path, suite: str, cell_id: str) -> Path:
    return checked_child(Path(results_dir) / "claims", suite, f"{cell_id}.claim")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(info: dict[str, Any], stale_after_s: float = STALE_AFTER_S, alive: Liveness | None = None,
             now: float | None = None) -> bool:
    """Whether the claim's owner is provably gone (unreadable claims count as stale)."""
    if not info:
        return True
    if alive is not None:
        verdict = alive(info)
        if verdict is not None:
            return not verdict
    now = time.time() if now is None else now
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not info.get("job_id"):
        if not _pid_alive(info["pid"]):
            return True
    return now - float(info.get("heartbeat", 0)) > stale_after_s


def read_claim(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


class Claim:
    """A claim this process holds; ``release`` removes it only while it is still ours."""

    def __init__(self, path: Path, info: dict[str, Any]):
        self.path = path
        self.info = info
        self._stop = threading.Event()

    def update(self, **fields: Any) -> None:
        """Add fields (a job id) or refresh the heartbeat; atomic, so readers never see half a file."""
        self.info.update(fields, heartbeat=time.time())
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(self.info), encoding="utf-8")
        os.replace(tmp, self.path)

    def owned(self) -> bool:
        return read_claim(self.path).get("token") == self.info["token"]

    @contextlib.contextmanager
    def heartbeat(self, every_s: float = HEARTBEAT_S) -> Iterator["Claim"]:
        """Refresh the heartbeat in a background thread for as long as the block runs."""
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(every_s):
                with contextlib.suppress(OSError):
                    if self.owned():
                        self.update()

        thread = threading.Thread(target=beat, name=f"claim-heartbeat-{self.path.stem}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def release(self) -> None:
        with contextlib.suppress(OSError):
            if self.owned():
                self.path.unlink()


def _create(path: Path, info: dict[str, Any]) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(info))
    return True


def try_claim(results_dir: Path, suite: str, cell_id: str, executor: str = "local",
              stale_after_s: float = STALE_AFTER_S, alive: Liveness | None = None,
              **extra: Any) -> "Claim | dict[str, Any]":
    """Claim the cell: a ``Claim`` on success, else the live holder's info."""
    path = claim_path(results_dir, suite, cell_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    info = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex, "executor": executor,
            "started": now, "heartbeat": now, **extra}
    for _ in range(3):  # create; if a stale claim is in the way, move it aside and create again
        if _create(path, info):
            return Claim(path, info)
        holder = read_claim(path)
        if not is_stale(holder, stale_after_s, alive):
            return holder
        with contextlib.suppress(FileNotFoundError):  # another taker moved it first
            os.rename(path, path.with_name(f".{path.name}.stale-{uuid.uuid4().hex}"))
    return read_claim(path)


def live_claims(results_dir: Path, suite: str, alive: Liveness | None = None) -> dict[str, dict[str, Any]]:
    """cell_id → holder info for every live claim of a suite (for ``zobench status``)."""
    folder = Path(results_dir) / "claims" / suite
    if not folder.is_dir():
        return {}
    claims = {}
    for path in sorted(folder.glob("*.claim")):
        info = read_claim(path)
        if not is_stale(info, alive=alive):
            claims[path.name[: -len(".claim")]] = info
    return claims
