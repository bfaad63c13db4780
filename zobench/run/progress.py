"""What a user watches during ``zobench run``: cells done and left, and per step the loss,
step time and peak memory so far, with an ETA (tqdm computes the per-cell one).

Messages come from the cell's child process through the launcher's pipe.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

from zobench.results.formatting import human_bytes, human_seconds


class Progress:
    def __init__(self, total_cells: int, stream=None):
        self.total = total_cells
        self.stream = stream or sys.stderr  # read now, not at import: the CLI's stderr may be swapped (tests)
        self.done = 0
        self.durations: list[float] = []
        self.bar: tqdm | None = None
        self._t0 = 0.0

    def _print(self, text: str) -> None:
        tqdm.write(text, file=self.stream)

    def skipped(self, cell_id: str) -> None:
        self.done += 1
        self._print(f"[{self.done}/{self.total}] {cell_id}: already has an ok record, skipped (--force reruns)")

    def held(self, cell_id: str, holder: dict[str, Any]) -> None:
        """Another run (or a queued Slurm job) holds the cell's claim: not run twice."""
        self.done += 1
        job = f"{holder.get('executor', '?')} job {holder['job_id']}, " if holder.get("job_id") else ""
        self._print(f"[{self.done}/{self.total}] {cell_id}: running elsewhere ({job}pid {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')}), skipped")

    def cell_started(self, cell_id: str) -> None:
        left = self.total - self.done
        eta = f", ETA {human_seconds(sum(self.durations) / len(self.durations) * left)}" if self.durations else ""
        self._print(f"[{self.done + 1}/{self.total}] {cell_id}  ({self.done} done, {left} left{eta})")
        self._t0 = time.monotonic()

    def handle(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "phase":
            if data["phase"] == "train":
                self.bar = tqdm(total=data["steps"], desc="  train", unit="step", file=self.stream,
                                dynamic_ncols=True, leave=False)
            else:
                self._close_bar()
                self._print(f"  {data['phase']}…")
        elif kind == "warning":
            self._print(f"  warning: {data['message']}")
        elif kind == "step" and self.bar is not None:
            self.bar.set_postfix_str(
                f"loss {data['loss']:.4f}, {data['step_time_s'] * 1000:.0f} ms/step, "
                f"peak {human_bytes(data['peak_mem_bytes'])}", refresh=False)
            self.bar.update(1)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def cell_finished(self, record: dict[str, Any]) -> None:
        self._close_bar()
        self.done += 1
        elapsed = time.monotonic() - self._t0
        self.durations.append(elapsed)
        m = record.get("metrics", {})
        detail = record.get("error") or (
            f"acc {m.get('step0_accuracy', float('nan')):.3f} → {m.get('accuracy', float('nan')):.3f}, "
            f"{(m.get('step_time_s') or float('nan')) * 1000:.0f} ms/step, peak {human_bytes(m.get('peak_mem_bytes'))}"
        )
        self._print(f"  {record['status']} in {human_seconds(elapsed)}: {detail}")
