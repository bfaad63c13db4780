"""Wall-clock per training step, synchronised on CUDA so queued kernels are counted.

The worker calls ``before_step`` last and ``after_step`` first, so other trackers'
own work stays outside the timed region. Evaluation never runs inside a step.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch


class StepTimeTracker:
    def __init__(self, device: str):
        self.cuda = torch.device(device).type == "cuda"
        self.times: list[float] = []
        self._t0 = 0.0

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def start(self) -> None:
        self.times = []

    def before_step(self, step: int) -> None:
        self._sync()
        self._t0 = time.perf_counter()

    def after_step(self, step: int, loss: float) -> None:
        self._sync()
        self.times.append(time.perf_counter() - self._t0)

    @property
    def last(self) -> float:
        return self.times[-1] if self.times else float("nan")

    def stop(self) -> dict[str, Any]:
        if not self.times:
            return {"step_time_s": None, "step_time_mean_s": None}
        return {
            "step_time_s": statistics.median(self.times),
            "step_time_mean_s": statistics.fmean(self.times),
            "step_time_total_s": sum(self.times),
        }
