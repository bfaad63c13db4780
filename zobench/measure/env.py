"""Provenance for every record: code version, libraries, device and host.

Usage: ``provenance("cuda")``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

LIBRARIES = ("torch", "transformers", "peft", "datasets", "numpy", "pandas", "gguf", "zobench")
REPO = Path(__file__).resolve().parents[2]  # zobench/measure/env.py → the checkout


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict[str, Any]:
    sha = _git("rev-parse", "HEAD")
    if sha is None and os.environ.get("ZOBENCH_GIT_SHA"):
        # A copy without .git (a GPU runner given the working tree, a non-editable
        # install): the caller states the commit, and the record says it was stated.
        return {"git_sha": os.environ["ZOBENCH_GIT_SHA"], "git_dirty": None, "git_sha_source": "ZOBENCH_GIT_SHA"}
    # results/ is excluded: a run's own records must not mark the code as dirty.
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"git_sha": sha, "git_dirty": bool(dirty) if dirty is not None else None}


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


VECTOR_ISA_FLAGS = ("avx512f", "avx2", "fma", "asimd", "sve")  # the ones that change CPU kernels' speed


def cpu_identity() -> dict[str, Any]:
    """The CPU's model name and vector extensions, from /proc/cpuinfo where there is one.

    CPU timings need both: one z pass of the same code took 137 ms on a 2-core AVX-512 Xeon and 982 ms
    on a 2-core AVX2 EPYC.
    """
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return {"cpu_model": fields.get("model name") or platform.processor() or None,
            "cpu_vector_isa": [f for f in VECTOR_ISA_FLAGS if f in flags]}


def device_info(device: str) -> dict[str, Any]:
    dev = torch.device(device)
    info: dict[str, Any] = {"device": str(dev), "cpu": platform.processor() or platform.machine(),
                            **cpu_identity(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        # The SM count too: seeded torch.randn on CUDA differs between GPUs with different SM counts.
        info.update(gpu_name=props.name, gpu_total_bytes=props.total_memory, cuda=torch.version.cuda,
                    gpu_sm_count=props.multi_processor_count)
    return info


def provenance(device: str) -> dict[str, Any]:
    return {
        **git_state(),
        "versions": library_versions(),
        **device_info(device),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }
