"""Measuring a cell: the trackers, and what checks or labels their figures.

Trackers observe a cell (the Tracker protocol in zobench/api.py); none steers it. registry.py
lists the trackers every cell runs (memory.py with monitor.py, divergence.py, step_time.py),
measurement.py is the one object the worker calls, which fans every call out to them; heap.py,
nvml.py and contention.py are their helpers. Adding a tracker is its own file here plus one line
in registry.py. Beside them: forward_count.py (forwards counted as they happen), env.py (each
record's provenance), calibrate.py (checks the memory trackers against a known buffer) and
gpu_peaks.py (peak bandwidth, for bench_step). This package imports nothing itself, so importing
one tracker stays cheap.
"""
