"""Executor throughput and dispatch overhead on this machine: an 8-cell tiny suite through
``local`` (one cell at a time), ``ray`` with 1 worker and with 2 workers (and ``slurm`` with
``--slurm``, against a running Slurm), then the same cells one at a time to measure per-cell
dispatch overhead without queueing.

Per cell, from the records' executor timestamps (wall clock):
- ``submit_to_start_s``: submission → the cell entry starts (queueing, Ray worker start, Slurm scheduling);
- ``submit_to_first_step_s``: submission → end of the first training step (adds process spawn, model
  load and the step-0 evaluation, which every executor pays alike);
- ``last_step_to_stored_s``: end of the last step → record stored (final evaluation, the record's way
  back to the driver, the atomic write).
Writes JSON to ``results/bench/executors-<host>.json`` (or ``--out``). Timing needs a quiet machine.
Usage: ``python -m zobench.bench_executors [--cells 8] [--steps 5] [--single 3] [--slurm] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from zobench.api import Cell, Executor
from zobench.measure.env import provenance
from zobench.run.executors.driver import drive
from zobench.results.store import atomic_write_text
from zobench.run.suite import Overrides, expand, load_suite


def tiny_cells(n: int, steps: int) -> list[Cell]:
    """n cells of the smoke suite (tiny random Llama on CPU): floor and mezo over n/2 seeds."""
    cells = expand(load_suite("smoke"), Overrides(methods=["floor", "mezo"], seeds=list(range((n + 1) // 2)),
                                                  steps=steps))
    return [dataclasses.replace(c, suite="bench-executors") for c in cells[:n]]


def overheads(records: list[dict[str, Any]]) -> dict[str, Any]:
    def spans(start: str, end: str) -> list[float]:
        return [r["executor"][end] - r["executor"][start] for r in records
                if r.get("executor", {}).get(start) and r["executor"].get(end)]

    out = {}
    for name, (start, end) in {"submit_to_start_s": ("submitted_at", "started_at"),
                               "submit_to_first_step_s": ("submitted_at", "first_step_at"),
                               "last_step_to_stored_s": ("last_step_at", "stored_at")}.items():
        values = spans(start, end)
        out[name] = {"median": statistics.median(values), "max": max(values), "n": len(values)} if values else None
    return out


def timed(make: Callable[[Path], Executor], cells: list[Cell], one_at_a_time: bool) -> dict[str, Any]:
    """Wall-clock of all cells through a fresh executor in a fresh results dir, with the records' overheads."""
    with tempfile.TemporaryDirectory(prefix="zobench-bench-") as tmp:
        results = Path(tmp)
        executor = make(results)
        t0 = time.perf_counter()
        records = []
        for batch in ([[c] for c in cells] if one_at_a_time else [cells]):
            records += drive(executor, batch, results, None)
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "cells": len(records), "statuses": sorted({r["status"] for r in records}),
            "contended": sum(bool(r.get("contended")) for r in records), **overheads(records)}


def local(results: Path) -> Executor:
    from zobench.run.executors.local import LocalExecutor

    return LocalExecutor(gpus=[])


def ray_with(workers: int) -> Callable[[Path], Executor]:
    def make(results: Path) -> Executor:
        import ray

        from zobench.run.executors.ray import RayExecutor

        if ray.is_initialized():
            ray.shutdown()
        ray.init(num_cpus=workers, num_gpus=0, include_dashboard=False, log_to_driver=False)
        return RayExecutor(cpus=1)
    return make


def slurm(results: Path) -> Executor:
    from zobench.run.executors.slurm import SlurmExecutor

    return SlurmExecutor(results, cpus=1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--single", type=int, default=3, help="cells run one at a time for the dispatch overhead")
    parser.add_argument("--slurm", action="store_true", help="also through a running Slurm (results in a tmp dir)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    cells = tiny_cells(args.cells, args.steps)
    engines: dict[str, Callable[[Path], Executor]] = {"local": local, "ray-1-worker": ray_with(1),
                                                      "ray-2-workers": ray_with(2)}
    if args.slurm:
        engines["slurm"] = slurm
    out: dict[str, Any] = {"env": provenance("cpu"), "cells": args.cells, "steps": args.steps, "suite": {}, "single": {}}
    for name, make in engines.items():
        out["suite"][name] = timed(make, cells, one_at_a_time=False)
        print(f"{name:14} {args.cells} cells in {out['suite'][name]['wall_s']:.1f} s", flush=True)
        if args.single:
            out["single"][name] = timed(make, cells[: args.single], one_at_a_time=True)
            single = out["single"][name]
            print(f"{'':14} one at a time: submit→first step {single['submit_to_first_step_s']['median']:.2f} s, "
                  f"last step→stored {single['last_step_to_stored_s']['median']:.2f} s (medians)", flush=True)
    base = out["suite"]["local"]["wall_s"]
    out["speedup_vs_local"] = {name: base / r["wall_s"] for name, r in out["suite"].items()}
    path = args.out or Path("results") / "bench" / f"executors-{socket.gethostname()}.json"
    atomic_write_text(path, json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"speed-up vs local: {', '.join(f'{k} {v:.2f}×' for k, v in out['speedup_vs_local'].items())}; → {path}")
    return out


if __name__ == "__main__":
    main()
