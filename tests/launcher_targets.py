"""Child-process targets for test_launcher (importable by spawned children)."""

from __future__ import annotations

import os
import signal
import time

import torch


def returns(payload, emit):
    emit("step", {"n": 1})
    return {"echo": payload}


def raises(payload, emit):
    raise ValueError("boom from the child")


def hangs(payload, emit):
    time.sleep(600)


def killed(payload, emit):
    os.kill(os.getpid(), signal.SIGKILL)


def cell_oom(payload, emit):
    """Mimics execute_cell's contract: the child classifies CUDA OOM as status oom."""
    from zobench.worker import status_for

    try:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    except Exception as exc:
        return {"status": status_for(exc)}


def temp_dir(payload, emit):
    import tempfile

    return tempfile.gettempdir()
