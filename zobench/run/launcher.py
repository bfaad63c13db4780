"""Run a function in its own spawned process, with a timeout, and classify how it ended.

Every cell gets a fresh process so one cell's peak memory, CUDA context or crash never
leaks into another's. The parent blocks in ``multiprocessing.connection.wait`` on the
pipe and the child's exit sentinel: it never spins, which would steal a core from the
measured run (optimum-benchmark's launcher busy-polls).
The child never outlives its parent or its deadline: it asks the kernel for SIGTERM when
the parent dies (``PR_SET_PDEATHSIG``, Linux) and a watchdog thread checks the parent pid
and the deadline every second (the portable fallback, and the backstop should the parent
hang). It ignores SIGINT: Ctrl-C reaches the whole terminal process group, and the parent,
which handles it, stops the child (one line on screen, not one traceback per process).
Its temporary files (the best-on-dev checkpoint: a full model copy for ``ft``) go to a
scratch folder the parent creates and removes on every exit path; a child that dies
alone removes it too.
Usage: ``outcome = run_isolated(fn, payload, timeout_s=600, on_message=print)``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

Target = Callable[[Any, Callable[[str, dict], None]], Any]
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
CHILD_GRACE_S = 30.0  # the child's own deadline: the parent's, plus time for the parent to stop it
WATCH_EVERY_S = 1.0


@dataclasses.dataclass
class Outcome:
    status: str  # ok (a result came back) | error | timeout
    result: Any = None
    error: str | None = None
    exitcode: int | None = None


def _die_with(scratch: str, code: int) -> None:
    """End this child now, its scratch folder removed (its monitor sees the pipe close and ends too)."""
    shutil.rmtree(scratch, ignore_errors=True)
    os._exit(code)


def _guard(parent_pid: int, deadline_s: float, scratch: str) -> None:
    """Tie the child's life to its parent's and to its own deadline (see the module doc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the monitor process too
    signal.signal(signal.SIGTERM, lambda *_: _die_with(scratch, 128 + signal.SIGTERM))
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    end = time.monotonic() + deadline_s

    def watch() -> None:
        while os.getppid() == parent_pid and time.monotonic() < end:
            time.sleep(WATCH_EVERY_S)
        _die_with(scratch, 128 + signal.SIGKILL)

    threading.Thread(target=watch, name="zobench-cell-watchdog", daemon=True).start()


def _child_main(target: Target, payload: Any, conn: Connection, parent_pid: int = 0, deadline_s: float = 0,
                scratch: str = "") -> None:
    if parent_pid:
        _guard(parent_pid, deadline_s, scratch)
        tempfile.tempdir = scratch  # the checkpoint and any other temporary file land in the parent's folder

    def emit(kind: str, data: dict) -> None:
        conn.send((kind, data))

    try:
        conn.send(("result", target(payload, emit)))
    except BaseException as exc:  # report, then let the process end
        conn.send(("crash", {"error": "".join(traceback.format_exception_only(exc)).strip()[-2000:],
                             "exception": type(exc).__name__}))
    finally:
        conn.close()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"child killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"child killed by signal {-code}"
    return f"child exited with code {code} without a result"


def _stop(proc: mp.process.BaseProcess) -> None:
    proc.terminate()
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join()


def run_isolated(target: Target, payload: Any, timeout_s: float,
                 on_message: Callable[[str, dict], None] | None = None, stop: Connection | None = None) -> Outcome:
    """Run ``target(payload, emit)`` in a spawned child; ``emit`` messages reach ``on_message``.
    ``stop`` becoming readable (an executor cancelling from another thread) ends the child."""
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    scratch = tempfile.mkdtemp(prefix="zobench-cell-")
    # Not a daemon: the cell starts its own monitor process, which daemons may not do.
    proc = ctx.Process(target=_child_main, daemon=False,
                       args=(target, payload, child_conn, os.getpid(), timeout_s + CHILD_GRACE_S, scratch))
    try:
        proc.start()
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    child_conn.close()  # so the parent sees EOF when the child dies
    deadline = time.monotonic() + timeout_s
    outcome: Outcome | None = None
    try:
        while outcome is None:
            remaining = deadline - time.monotonic()
            ready = wait([parent_conn, proc.sentinel] + ([stop] if stop is not None else []), timeout=max(remaining, 0))
            if not ready:
                _stop(proc)
                return Outcome("timeout", error=f"cell exceeded its timeout of {timeout_s:g} s", exitcode=proc.exitcode)
            if stop is not None and stop in ready:
                _stop(proc)
                return Outcome("error", error="cancelled", exitcode=proc.exitcode)
            if parent_conn in ready:
                try:
                    kind, data = parent_conn.recv()
                except EOFError:  # child gone without a result: crashed or killed
                    proc.join()
                    return Outcome("error", error=_describe_exit(proc.exitcode), exitcode=proc.exitcode)
                if kind == "result":
                    outcome = Outcome("ok", result=data)
                elif kind == "crash":
                    outcome = Outcome("error", error=data["error"])
                elif on_message is not None:
                    on_message(kind, data)
            elif not parent_conn.poll():
                proc.join()
                return Outcome("error", error=_describe_exit(proc.exitcode), exitcode=proc.exitcode)
        proc.join(30)
        if proc.is_alive():
            _stop(proc)
        outcome.exitcode = proc.exitcode
        return outcome
    except BaseException:  # Ctrl-C in the parent: never leave the child running
        _stop(proc)
        raise
    finally:
        parent_conn.close()
        shutil.rmtree(scratch, ignore_errors=True)
