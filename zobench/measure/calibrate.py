"""Calibrate the memory trackers: allocate a known buffer and check every source sees it.

Runs the same PhaseMemory + monitor process a cell uses. Phase ``idle`` holds nothing new;
phase ``train`` holds a buffer of known size, every byte written. Each source's figure
must move from ``idle`` to ``train`` by the buffer's size within ±10%:
- CUDA: NVML process memory (the headline source), NVML device used, torch max
  allocated and max reserved;
- CPU: the kernel RSS high-water mark (the headline source) and the monitor's RSS samples.
A source that reports nothing (NVML hiding pids in a container, say) is listed as
unavailable, not failed; the exit code is 1 if any available source is off.

On CPU a second case checks the phase reset: in a fresh process an evaluation-sized
allocation (fragmented, as activations are, so glibc keeps it) is freed in an ``eval``
phase; the ``train`` phase that follows holds nothing new, and its peak must not include
the freed bytes (within ±10% of them). It runs twice: with the heap trim (must pass) and
without it (shows what the trim prevents; informational).

Usage: ``python -m zobench.measure.calibrate [--device auto|cpu|cuda] [--size-mib N] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from zobench.api import UserError

TOLERANCE = 0.10
DEFAULT_MIB = {"cuda": 4096, "cpu": 256}
HOLD_S = 0.5  # long enough for 50 NVML polls (10 ms) and 5 RSS samples (100 ms)
SOURCES = {
    "cuda": ("nvml_process_peak_bytes", "nvml_device_used_peak_bytes", "torch_max_allocated_bytes",
             "torch_max_reserved_bytes"),
    "cpu": ("cpu_hwm_bytes", "rss_sampled_peak_bytes"),
}


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for, but torch sees no CUDA device; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"unknown device '{name}'; valid: auto, cpu, cuda, cuda:N")
    return name


def calibrate(device: str = "auto", size_bytes: int | None = None, monitor: bool = True) -> dict[str, Any]:
    """Measure the buffer through every memory source; returns the figures and a verdict per source."""
    from zobench.measure.memory import PhaseMemory
    from zobench.measure.monitor import Monitor
    from zobench.measure.nvml import gpu_identity

    device = _device(device)
    kind = torch.device(device).type
    size = size_bytes if size_bytes is not None else DEFAULT_MIB[kind] * 2**20
    if size <= 0:
        raise UserError(f"buffer size must be positive, got {size} bytes")
    gpu: dict[str, Any] = {}
    if kind == "cuda":  # the cell's own start-up order: CUDA context first, then the monitor
        torch.cuda.init()
        torch.zeros(1, device=device)
        baseline = {"torch_reserved_bytes": torch.cuda.memory_reserved(device)}
        gpu = gpu_identity(torch.device(device))
        mon = Monitor.launch(os.getpid(), gpu.get("uuid")) if monitor else None
    else:
        baseline = {}
        mon = Monitor.launch(os.getpid(), None) if monitor else None
    memory = PhaseMemory(device, mon, baseline)
    memory.enter("idle")
    time.sleep(HOLD_S)
    memory.enter("train")
    # uint8 so the size is exact; fill_ writes every byte (CPU pages are committed only when touched).
    buffer = torch.empty(size, dtype=torch.uint8, device=device)
    buffer.fill_(1)
    if kind == "cuda":
        torch.cuda.synchronize(device)
    time.sleep(HOLD_S)
    del buffer
    gc.collect()
    result = memory.finish()
    metrics = result.metrics
    checks = {}
    for source in SOURCES[kind]:
        before, after = metrics.get(f"idle_{source}"), metrics.get(f"train_{source}")
        if before is None or after is None:
            checks[source] = {"available": False, "before": before, "after": after}
            continue
        delta = after - before
        checks[source] = {"available": True, "before": before, "after": after, "delta": delta,
                          "ratio": delta / size, "ok": abs(delta - size) <= TOLERANCE * size}
    available = [c for c in checks.values() if c["available"]]
    return {
        "device": device, "size_bytes": size, "tolerance": TOLERANCE, "checks": checks,
        "peak_mem_source": metrics.get("peak_mem_source"), "peak_mem_bytes": metrics.get("peak_mem_bytes"),
        "ok": bool(available) and all(c["ok"] for c in available),
        "gpu": gpu, "memory": result.details["memory"], "metrics": metrics, "rss_timeline": result.series["rss"],
        "torch": torch.__version__,
    }


def _freed_eval_then_train(payload: dict[str, Any], emit=None) -> dict[str, Any]:
    """In its own process: allocate and free ``size`` bytes in ``eval``, then enter ``train`` holding nothing."""
    from zobench.measure.memory import PhaseMemory

    memory = PhaseMemory("cpu", None, trim_heap=payload["trim"])
    memory.enter("eval")
    # A freed 16 MiB block raises glibc's mmap threshold, so the 1 MiB chunks below come
    # from the heap; the small pins between them stop the freed chunks from coalescing
    # into the heap top, which glibc would trim by itself. That is what activations do.
    threshold_raiser = torch.ones(16 * 2**20, dtype=torch.uint8)
    del threshold_raiser
    chunk = 2**20
    chunks, pins = [], []
    for _ in range(payload["size"] // chunk):
        chunks.append(torch.ones(chunk, dtype=torch.uint8))
        pins.append(torch.ones(4096, dtype=torch.uint8))
    del chunks
    memory.enter("train")
    metrics = memory.finish().metrics
    return {key: metrics.get(key) for key in ("eval_cpu_start_rss_bytes", "eval_cpu_hwm_bytes", "train_cpu_hwm_bytes",
                                                "train_cpu_start_rss_bytes", "train_cpu_reset_ok", "cpu_heap_trim")}


def phase_reset_case(size_bytes: int = 512 * 2**20, trim: bool = True) -> dict[str, Any]:
    """The CPU phase-reset case in a fresh process: how much of the freed eval allocation the train peak shows."""
    from zobench.run.launcher import run_isolated

    outcome = run_isolated(_freed_eval_then_train, {"size": size_bytes, "trim": trim}, timeout_s=300)
    if outcome.status != "ok":
        raise RuntimeError(f"phase-reset case failed: {outcome.error}")
    figures = outcome.result
    leaked = figures["train_cpu_hwm_bytes"] - figures["eval_cpu_start_rss_bytes"]
    return {**figures, "size_bytes": size_bytes, "trim": trim, "leaked_bytes": leaked,
            "leaked_fraction": leaked / size_bytes, "ok": leaked <= TOLERANCE * size_bytes}


def _line(source: str, check: dict[str, Any]) -> str:
    if not check["available"]:
        return f"  {source:30} not reported"
    gib = 2**30
    verdict = "ok" if check["ok"] else "OFF"
    return (f"  {source:30} {check['before'] / gib:8.3f} → {check['after'] / gib:8.3f} GiB  "
            f"Δ {check['delta'] / gib:7.3f} GiB  ({check['ratio']:.3f}× the buffer)  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zobench.measure.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--size-mib", type=int, default=None, help="buffer size (default 4096 on CUDA, 256 on CPU)")
    parser.add_argument("--out", type=Path, default=None, help="also write the full result as JSON here")
    args = parser.parse_args(argv)
    try:
        result = calibrate(args.device, None if args.size_mib is None else args.size_mib * 2**20)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"calibration on {result['device']}"
          + (f" ({result['gpu'].get('name')})" if result["gpu"].get("available") else "")
          + f": buffer {result['size_bytes'] / 2**30:.3f} GiB, tolerance ±{TOLERANCE:.0%}")
    for source, check in result["checks"].items():
        print(_line(source, check))
    print(f"  headline source: {result['peak_mem_source']}; nvml: {result['memory']['nvml_reason'] or 'available'}")
    if result["device"] == "cpu":
        result["phase_reset"] = {"trim": phase_reset_case(), "no_trim": phase_reset_case(trim=False)}
        for name, case in result["phase_reset"].items():
            print(f"  phase reset ({name:7}): 512 MiB freed in eval shows {case['leaked_fraction']:.3f}× in the train peak"
                  + ("" if name == "no_trim" else "  " + ("ok" if case["ok"] else "OFF")))
        result["ok"] = result["ok"] and result["phase_reset"]["trim"]["ok"]
    print("calibration " + ("PASSED" if result["ok"] else "FAILED"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
