"""Peak memory per phase (load, train, eval) of the cell's process, from every source we have.

Per phase it keeps:
- CPU: the kernel's resident-set high-water mark (VmHWM), reset at each phase start through
  ``/proc/self/clear_refs`` where the kernel allows it, else ``ru_maxrss`` (lifetime, flagged).
  The order at a phase start matters: first the freed heap goes back to the OS (gc, then
  glibc's ``malloc_trim``, measure/heap.py), then the mark is reset, then the RSS is read as
  the phase's starting level. Reset first and the phase would inherit the previous phase's
  freed-but-kept heap (a floor read above MeZO that way). Per phase it keeps the absolute
  peak and the peak above the starting level, and checks the trim took: the starting RSS
  beyond the pre-load process and the live tensors (``cpu_start_unexplained_bytes``) must be
  small (``cpu_reset_ok``);
- CUDA: ``torch.cuda.max_memory_allocated/reserved``, reset at each phase start;
- NVML (from the monitor process): per-process ``usedGpuMemory`` summed over the cell's
  pids, and device ``used`` (v2), plus energy;
and the CUDA-context baseline measured right after CUDA initialised.
``peak_mem_bytes`` is the train phase's peak from the best source available, named in
``peak_mem_source``: NVML process memory; else NVML device used minus the baseline (a
container can hide pids from NVML); else torch reserved; on CPU the RSS high-water mark.
A Tracker (zobench/api.py): ``phase`` is ``enter``; it starts and composes the cell's monitor.
Usage: ``mem = PhaseMemory(device, monitor); mem.enter("load"); ...; mem.finish(failed=False)``.
"""

from __future__ import annotations

import gc
import resource
from pathlib import Path
from typing import Any

import torch

from zobench.api import Measured, PhaseTracker, TrackerContext
from zobench.measure.heap import current_rss_bytes, live_tensor_bytes, return_freed_memory
from zobench.measure.monitor import Monitor

STATUS = Path("/proc/self/status")
PHASES = ("load", "train", "eval")
# The trim took when the phase's starting RSS exceeds the pre-load process plus the live
# tensors by less than this: room for code, tokenizers and allocator slack, far below the
# hundreds of MiB an evaluation batch frees.
RESET_SLACK_BYTES = 192 * 2**20
RESET_SLACK_FRACTION = 0.10


def vm_hwm_bytes() -> int:
    """Kernel high-water mark of resident memory; ru_maxrss where /proc is missing."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_vm_hwm() -> bool:
    """Ask the kernel to restart the high-water mark at the current RSS (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


class PhaseMemory(PhaseTracker):
    def __init__(self, device: str, monitor: Monitor | None, cuda_baseline: dict[str, Any] | None = None,
                 trim_heap: bool = True):
        self.trim_heap = trim_heap  # False only to show calibration what the trim prevents
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.monitor = monitor
        self.cuda_baseline = cuda_baseline or {}
        self.current: str | None = None
        self.phases: dict[str, dict[str, Any]] = {}
        self.hwm_resets_ok = True
        self.heap_trim_ok = True
        self.phase_start_rss: int | None = None
        # The process before the model exists: what no live tensor accounts for (interpreter, libraries).
        return_freed_memory()
        self.rss_baseline = current_rss_bytes()
        self.tensor_baseline = live_tensor_bytes() if not self.cuda else 0

    @classmethod
    def for_cell(cls, context: TrackerContext) -> PhaseMemory:
        """Starts the monitor process first (``cell.monitor``), so this baseline includes it."""
        monitor = Monitor.for_cell(context) if context.cell.monitor else None
        return cls(context.device, monitor, context.cuda_baseline)

    def enter(self, phase: str) -> None:
        """Close the current phase and start ``phase`` (phases may recur: maxima accumulate)."""
        self._fold()
        if self.cuda:
            torch.cuda.synchronize(self.device)
            # Hand cached blocks back to the driver, so NVML's figure for the new phase holds
            # what this phase needs, not what the last one left in torch's cache (the ZO drift
            # probe's copy of θ at load, evaluation activations): NVML sees reserved, not allocated.
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        if self.trim_heap:
            self.heap_trim_ok &= return_freed_memory()  # before the reset: see the module docstring
        self.hwm_resets_ok &= reset_vm_hwm()
        self.phase_start_rss = current_rss_bytes()
        if not self.cuda:
            self._check_reset(phase)
        if self.monitor is not None:
            self.monitor.mark(phase)
        self.current = phase

    def _check_reset(self, phase: str) -> None:
        """Record how much of the starting RSS neither the pre-load process nor a live tensor explains."""
        if self.phase_start_rss is None or self.rss_baseline is None:
            return
        tensors = live_tensor_bytes() - self.tensor_baseline
        unexplained = self.phase_start_rss - self.rss_baseline - tensors
        stats = self.phases.setdefault(phase, {})
        stats["cpu_start_unexplained_bytes"] = _max(stats.get("cpu_start_unexplained_bytes"), unexplained)
        ok = unexplained <= RESET_SLACK_BYTES + RESET_SLACK_FRACTION * max(tensors, 0)
        stats["cpu_reset_ok"] = stats.get("cpu_reset_ok", True) and ok

    def peak_so_far(self) -> int:
        """The current phase's peak from in-process sources (cheap enough for every step)."""
        if self.cuda:
            return torch.cuda.max_memory_reserved(self.device)
        return vm_hwm_bytes()

    def _fold(self) -> None:
        if self.current is None:
            return
        stats = self.phases.setdefault(self.current, {})
        hwm = vm_hwm_bytes()
        stats["cpu_hwm_bytes"] = _max(stats.get("cpu_hwm_bytes"), hwm)
        if self.phase_start_rss is not None:  # what this phase added above its starting level
            stats["cpu_start_rss_bytes"] = _max(stats.get("cpu_start_rss_bytes"), self.phase_start_rss)
            stats["cpu_hwm_above_start_bytes"] = _max(stats.get("cpu_hwm_above_start_bytes"),
                                                      hwm - self.phase_start_rss)
        if self.cuda:
            stats["torch_max_allocated_bytes"] = _max(stats.get("torch_max_allocated_bytes"),
                                                      torch.cuda.max_memory_allocated(self.device))
            stats["torch_max_reserved_bytes"] = _max(stats.get("torch_max_reserved_bytes"),
                                                     torch.cuda.max_memory_reserved(self.device))

    # The Tracker protocol: phases are all it needs; it measures even after a failure (an OOM's peak is a result).
    def phase(self, name: str) -> None:
        self.enter(name)

    def finish(self, failed: bool = False) -> Measured:
        """Flat metrics (``<phase>_<source>`` keys, the headline peak with its source), the record's
        ``memory`` section, the RSS timeline, and a warning when other processes used the GPU."""
        result = self._summary()
        foreign = result["details"]["foreign_gpu_pids"]
        warnings = [f"other processes used the GPU during this cell: pids {foreign}"] if foreign else []
        return Measured(metrics=result["metrics"], details={"memory": result["details"]},
                        series={"rss": result["rss_timeline"]}, warnings=warnings)

    def _summary(self) -> dict[str, Any]:
        self._fold()
        self.current = None
        monitor = self.monitor.stop() if self.monitor is not None else {}
        for phase, stats in monitor.get("phases", {}).items():
            if phase in self.phases:
                self.phases[phase].update(stats)
        out: dict[str, Any] = {"cpu_hwm_reset": self.hwm_resets_ok, "cpu_heap_trim": self.heap_trim_ok}
        for phase, stats in self.phases.items():
            out.update({f"{phase}_{key}": value for key, value in stats.items()})
        out.update(self._headline(self.phases.get("train", {}), monitor))
        if monitor:
            out.update(monitor_cpu_s=monitor["monitor_cpu_s"], monitor_wall_s=monitor["monitor_wall_s"])
        details = {
            "nvml_available": monitor.get("nvml_available", False),
            "nvml_reason": monitor.get("nvml_reason", "no monitor"),
            "nvml_process_seen": monitor.get("nvml_process_seen", False),
            "cuda_context_baseline": {**self.cuda_baseline, **monitor.get("baseline", {})},
            "foreign_gpu_pids": monitor.get("foreign_gpu_pids", []),
        }
        return {"metrics": out, "details": details, "rss_timeline": monitor.get("rss_timeline", [])}

    def _headline(self, train: dict[str, Any], monitor: dict[str, Any]) -> dict[str, Any]:
        if not self.cuda:
            source = "cpu_vmhwm" if self.hwm_resets_ok else "cpu_ru_maxrss_lifetime"
            return {"peak_mem_bytes": train.get("cpu_hwm_bytes"), "peak_mem_source": source}
        if train.get("nvml_process_peak_bytes") is not None:
            return {"peak_mem_bytes": train["nvml_process_peak_bytes"], "peak_mem_source": "nvml_process"}
        base = monitor.get("baseline", {}).get("nvml_device_used_bytes")
        if train.get("nvml_device_used_peak_bytes") is not None and base is not None:
            # Flagged: includes any other process's growth on the same GPU during the cell.
            return {"peak_mem_bytes": train["nvml_device_used_peak_bytes"] - base,
                    "peak_mem_source": "nvml_device_minus_baseline"}
        return {"peak_mem_bytes": train.get("torch_max_reserved_bytes"), "peak_mem_source": "torch_reserved"}
