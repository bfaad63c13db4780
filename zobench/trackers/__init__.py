"""Trackers observe a cell's training phase (see the Tracker protocol in zobench/api.py).

v1: step time, process memory (CPU high-water mark, torch CUDA peaks) and divergence.
The measurement issue adds NVML, energy and per-phase figures behind the same seam.
"""
