"""Which GPU a cell runs on, read from NVML and matched by UUID, and NVML's own counters.

NVML numbers devices its own way and ignores CUDA_VISIBLE_DEVICES, so a torch device is
matched to its NVML handle through the UUID, never through the index. Everything here
degrades to ``{"available": False, "reason": ...}`` where NVML or a GPU is missing.
Usage: ``gpu_identity(torch.device("cuda:0"))``.
"""

from __future__ import annotations

from typing import Any

import torch


def nvml_uuid(device: torch.device) -> str:
    """torch reports the UUID without NVML's "GPU-" prefix."""
    uuid = str(torch.cuda.get_device_properties(device).uuid)
    return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"


def open_handle(uuid: str):
    import pynvml

    pynvml.nvmlInit()
    return pynvml.nvmlDeviceGetHandleByUUID(uuid)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_identity(device: torch.device) -> dict[str, Any]:
    """Name, UUID, driver, CUDA version and MIG mode of the cell's GPU, or why they are unknown."""
    if device.type != "cuda":
        return {"available": False, "reason": "not a CUDA device"}
    try:
        import pynvml

        uuid = nvml_uuid(device)
        handle = open_handle(uuid)
        try:
            mig = pynvml.nvmlDeviceGetMigMode(handle)[0] == pynvml.NVML_DEVICE_MIG_ENABLE
        except pynvml.NVMLError:
            mig = None  # not a MIG-capable GPU
        return {
            "available": True,
            "uuid": uuid,
            "name": _text(pynvml.nvmlDeviceGetName(handle)),
            "driver": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": pynvml.nvmlSystemGetCudaDriverVersion_v2(),
            "cuda_runtime": torch.version.cuda,
            "mig_enabled": mig,
            "total_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
        }
    except Exception as exc:  # no library, no permission, no such UUID
        return {"available": False, "reason": f"NVML not available: {type(exc).__name__}: {exc}"}


def read_energy_mj(handle) -> int | None:
    """Total energy since the driver loaded, in millijoules; None where the GPU lacks the counter."""
    import pynvml

    try:
        return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    except pynvml.NVMLError:
        return None


def read_memory(handle, pids: set[int]) -> dict[str, Any]:
    """One NVML sample: our processes' memory (summed), device memory used (v2), others' pids."""
    import pynvml

    ours, seen, unknown, foreign = 0, False, False, []
    for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
        if proc.pid in pids:
            seen = True
            if proc.usedGpuMemory is None:  # NVML_VALUE_NOT_AVAILABLE
                unknown = True
            else:
                ours += int(proc.usedGpuMemory)
        else:
            foreign.append(int(proc.pid))
    used = int(pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2).used)
    return {"process_bytes": ours if seen and not unknown else None, "device_used_bytes": used, "foreign_pids": foreign}


def combine_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One sample per GPU of a multi-GPU cell (``read_memory`` each) → the cell's sample: process
    memory and device used summed over its GPUs (process memory unknown if any GPU's is), other
    processes' pids merged, and each GPU's own process figure kept in order (``per_gpu``)."""
    per_gpu = [s["process_bytes"] for s in samples]
    return {
        "process_bytes": None if not samples or any(b is None for b in per_gpu) else sum(per_gpu),
        "device_used_bytes": sum(s["device_used_bytes"] for s in samples) if samples else None,
        "foreign_pids": sorted({pid for s in samples for pid in s["foreign_pids"]}),
        "per_gpu": per_gpu,
    }
