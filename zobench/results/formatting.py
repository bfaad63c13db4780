"""Numbers as people read them: bytes in binary units, durations in minutes and hours.

Shared by the progress bar, the reports and the gate, so they print a figure the same way.
Usage: ``human_bytes(3 * 2**20)`` → ``"3.0 MiB"``; ``human_seconds(90)`` → ``"1m30s"``.
"""

from __future__ import annotations


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def human_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
