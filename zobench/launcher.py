"""Run a function in its own spawned process, with a timeout, and classify how it ended.

Every cell gets a fresh process so one cell's peak memory, CUDA context or crash never
leaks into another's. The parent blocks in ``multiprocessing.connection.wait`` on the
pipe and the child's exit sentinel: it never spins, which would steal a core from the
measured run (optimum-benchmark's launcher busy-polls).
Usage: ``outcome = run_isolated(fn, payload, timeout_s=600, on_message=print)``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import signal
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

Target = Callable[[Any, Callable[[str, dict], None]], Any]


@dataclasses.dataclass
class Outcome:
    status: str  # ok (a result came back) | error | timeout
    result: Any = None
    error: str | None = None
    exitcode: int | None = None


def _child_main(target: Target, payload: Any, conn: Connection) -> None:
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
    # Not a daemon: the cell starts its own monitor process, which daemons may not do.
    proc = ctx.Process(target=_child_main, args=(target, payload, child_conn), daemon=False)
    proc.start()
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
