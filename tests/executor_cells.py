"""Stand-in cells for the executor tests (importable by Ray workers and Slurm jobs)."""

from __future__ import annotations

from zobench.api import Cell


def make_cell(i: int, device: str = "cuda", gpus: int = 1, suite: str = "exec-test", **args) -> Cell:
    return Cell(suite=suite, model="random:tiny-llama", task="synthetic", label=f"c{i}", method="floor", args=args,
                seed=0, steps=1, batch_size=1, dtype="fp32", device=device, data_seed=0, split_sizes={}, max_length=8,
                eval_batch_size=1, timeout_s=120.0, spike_factor=3.0, gpus=gpus)


def overlapping(records: list[dict]) -> list[tuple[dict, dict]]:
    """Pairs of records whose run intervals (metrics t0..t1) overlap."""
    out = []
    for i, a in enumerate(records):
        for b in records[i + 1:]:
            if a["metrics"]["t0"] < b["metrics"]["t1"] and b["metrics"]["t0"] < a["metrics"]["t1"]:
                out.append((a, b))
    return out


def devices_of(record: dict) -> set[str]:
    return set(filter(None, (record["metrics"]["cuda_visible_devices"] or "").split(",")))
