"""Peak memory of the cell's process during training.

CPU: the kernel's resident-set high-water mark (VmHWM). It is reset at ``start`` through
``/proc/self/clear_refs`` where the kernel allows it, so model loading does not count;
where it cannot be reset, the source is flagged as including load.
CUDA: ``torch.cuda.max_memory_allocated/reserved``, reset at ``start``. (NVML process
memory, the number the papers should have used, comes with the measurement issue.)
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import torch

STATUS = Path("/proc/self/status")


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


class MemoryTracker:
    def __init__(self, device: str):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.hwm_was_reset = False

    def start(self) -> None:
        self.hwm_was_reset = reset_vm_hwm()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def before_step(self, step: int) -> None:
        pass

    def after_step(self, step: int, loss: float) -> None:
        pass

    def peak_so_far(self) -> int:
        """The headline peak so far (cheap enough to call every step)."""
        if self.cuda:
            return torch.cuda.max_memory_reserved(self.device)
        return vm_hwm_bytes()

    def stop(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cpu_peak_rss_bytes": vm_hwm_bytes(), "cpu_hwm_reset": self.hwm_was_reset}
        if self.cuda:
            out["cuda_max_allocated_bytes"] = torch.cuda.max_memory_allocated(self.device)
            out["cuda_max_reserved_bytes"] = torch.cuda.max_memory_reserved(self.device)
            out["peak_mem_bytes"] = out["cuda_max_reserved_bytes"]
            out["peak_mem_source"] = "torch_cuda_reserved"
        else:
            out["peak_mem_bytes"] = out["cpu_peak_rss_bytes"]
            out["peak_mem_source"] = "cpu_vmhwm_train" if self.hwm_was_reset else "cpu_vmhwm_incl_load"
        return out
