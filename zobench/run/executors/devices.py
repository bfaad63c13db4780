"""Which cells may start now on this host, and on which GPUs: one cell per GPU, k disjoint
GPUs for a cell that needs k, CPU cells one at a time unless ``--parallel N`` allows more.

Pure functions over ids and counts, so the packing is testable without a GPU; the local
executor pins each started cell to its GPUs through CUDA_VISIBLE_DEVICES.
Usage: ``starts = pack(waiting, free_gpus=[0, 1, 2, 3], cpu_slots=1)``.
"""

from __future__ import annotations

import dataclasses
import os

from zobench.api import UserError


@dataclasses.dataclass(frozen=True)
class Need:
    """What one waiting cell needs: ``gpus`` devices (0: a CPU cell)."""

    key: str
    gpus: int


def parse_gpus(text: str | None, visible: int) -> list[int]:
    """``--gpus 0,1,3`` → [0, 1, 3]; None → every visible GPU. Ids must exist and not repeat."""
    if text is None:
        return list(range(visible))
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--gpus takes comma-separated GPU indices (e.g. 0,1,2,3), got '{text}'") from None
    if len(set(ids)) != len(ids) or any(i < 0 for i in ids):
        raise UserError(f"--gpus lists each GPU once, as a non-negative index, got '{text}'")
    missing = [i for i in ids if i >= visible]
    if missing:
        raise UserError(f"--gpus {text}: GPU(s) {', '.join(map(str, missing))} not visible ({visible} visible)")
    return ids


def visible_gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def pack(waiting: list[Need], free_gpus: list[int], cpu_slots: int, running: str | None = None) -> list[tuple[str, list[int]]]:
    """Cells to start now, in order, with the GPUs each gets (empty for CPU cells).

    First fit in the given order: a cell that does not fit yet is passed over, so a
    4-GPU cell never blocks 1-GPU cells behind it from using the GPUs that are free.
    CPU cells and GPU cells never run at once (``running``: "cpu" or "gpu", what runs now):
    a CPU cell's step times would suffer from a GPU cell's host-side work, and the reverse.
    """
    free = sorted(free_gpus)
    starts = []
    for need in waiting:
        kind = "cpu" if need.gpus == 0 else "gpu"
        if running not in (None, kind):
            continue
        if kind == "cpu" and cpu_slots > 0:
            cpu_slots -= 1
            starts.append((need.key, []))
            running = kind
        elif kind == "gpu" and need.gpus <= len(free):
            taken, free = free[: need.gpus], free[need.gpus :]
            starts.append((need.key, taken))
            running = kind
    return starts


def check_fits(needs: list[Need], pool: list[int]) -> None:
    """Fail before anything runs when a cell needs more GPUs than the run may use."""
    for need in needs:
        if need.gpus > len(pool):
            raise UserError(f"cell {need.key} needs {need.gpus} GPU(s) but this run may use {len(pool)} "
                            f"({'--gpus ' + ','.join(map(str, pool)) if pool else 'no GPU visible'})")


def cuda_visible(ids: list[int]) -> str:
    """CUDA_VISIBLE_DEVICES for ``ids``, relative to the run's own CUDA_VISIBLE_DEVICES if it has one."""
    outer = os.environ.get("CUDA_VISIBLE_DEVICES")
    if outer:
        names = [n.strip() for n in outer.split(",")]
        return ",".join(names[i] for i in ids)
    return ",".join(map(str, ids))
