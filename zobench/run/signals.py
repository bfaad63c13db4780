"""SIGTERM gets the cleanup Ctrl-C gets: it is raised as ``Terminated``, a KeyboardInterrupt.

CI runners, ``timeout`` and batch schedulers stop a job with SIGTERM, whose default action
ends the process at once: no ``finally`` runs, so the running cell (and its best-on-dev
checkpoint) would be left to its own watchdog and claims would wait to go stale. Raised as an
exception instead, it unwinds like Ctrl-C: the child is stopped, its scratch folder removed,
its claim released, and the finished records stay as they are.
Usage: ``with terminate_as_interrupt(): run_cells(...)``; ``exit_code(exc)`` → 130 or 143.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Iterator

EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _raise_terminated(signum, frame) -> None:  # noqa: ANN001 - the signal module's handler signature
    raise Terminated()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(exc: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
