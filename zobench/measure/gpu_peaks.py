"""Peak memory bandwidth by GPU model, for the z pass's fraction-of-peak figure (bench_step).

Vendor figures (bytes/s). Matched on the name torch reports (``torch.cuda.get_device_name``);
the first pattern that the name contains wins, so more specific names come first. The lent
"H100 about 78 GiB" may be SXM or PCIe: the name (and the SM count, 132 vs 114) tells them apart.
Sources: NVIDIA datasheets; shared/reference/scale-out-and-kernels.md §3.
Usage: ``peak_bandwidth("NVIDIA H100 80GB HBM3")`` → 3.35e12, or None when unknown.
"""

from __future__ import annotations

PEAK_BYTES_PER_S: list[tuple[str, float]] = [
    ("H200", 4.8e12),  # H200 141 GB HBM3e
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),  # product brief PB-11133-001: ">2.0 TB/s"
    ("H100 80GB HBM3", 3.35e12),  # SXM5
    ("H100 SXM", 3.35e12),
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100-SXM4-40GB", 1.555e12),
    ("A100-PCIE-40GB", 1.555e12),
    ("L40S", 0.864e12),
    ("L40", 0.864e12),
    ("L4", 0.3e12),
    ("A10G", 0.6e12),
    ("T4", 0.32e12),
]


def peak_bandwidth(gpu_name: str) -> float | None:
    """The model's peak memory bandwidth in bytes/s, or None for a GPU not in the table."""
    for pattern, peak in PEAK_BYTES_PER_S:
        if pattern.lower() in gpu_name.lower():
            return peak
    return None
