"""Give freed heap back to the OS at a phase boundary, so a CPU phase's peak is that phase's own.

glibc keeps memory freed by ``free`` in its arenas (below the mmap threshold, which rises
after large frees) instead of returning it to the kernel. The RSS high-water mark reset at
a phase start begins at the *current* RSS, so without a trim the train phase inherits
whatever the step-0 evaluation freed: a floor that had evaluated at batch 64 read higher than
MeZO. ``return_freed_memory`` runs the garbage collector (freeing tensors held only by
cycles) and then ``malloc_trim(0)``, which hands free pages of every arena back (glibc ≥ 2.8
uses ``madvise(MADV_DONTNEED)`` inside the heap, not just at its top). No library exposes
malloc_trim, hence the ctypes call; on a libc without it (musl, macOS) the trim is skipped and
says so. ``live_tensor_bytes`` counts what the process's CPU tensors hold, to check the trim
took: what the RSS holds beyond the live tensors and the process's pre-load baseline should be small.
Usage: ``trimmed = return_freed_memory(); rss = current_rss_bytes()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache
from pathlib import Path

import torch

STATM = Path("/proc/self/statm")


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def return_freed_memory() -> bool:
    """Collect garbage, then return free heap pages to the OS; False where libc cannot trim."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def current_rss_bytes() -> int | None:
    """The process's resident set now (``/proc/self/statm``), None off Linux."""
    try:
        resident_pages = int(STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    import resource

    return resident_pages * resource.getpagesize()


def live_tensor_bytes() -> int:
    """Bytes held by the distinct storages of every live CPU tensor (shared storages counted once)."""
    storages: dict[int, int] = {}
    for obj in gc.get_objects():
        try:
            # type(), not isinstance: isinstance reads __class__, which deprecated module proxies warn on
            if issubclass(type(obj), torch.Tensor) and obj.device.type == "cpu" and not obj.is_meta:
                storage = obj.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, ReferenceError):  # sparse or otherwise storage-less tensors
            continue
    return sum(storages.values())
