"""Wall-clock per training step: CUDA events on GPU, ``perf_counter`` on CPU; warm-up excluded.

A Tracker (zobench/api.py), registered last: the worker calls its ``before_step`` last and its
``after_step`` first, so other trackers' own work stays outside the timed region; evaluation
never runs inside a step. The first
``warmup_steps`` steps are timed and kept in the series but left out of the statistics
(compilation, allocator growth and cache warm-up), and counted.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from zobench.api import Event, Measured, TrackerContext, TrainingStart


class StepTimeTracker:
    def __init__(self, device: str, warmup_steps: int = 1, n_devices: int = 1):
        self.device = torch.device(device)
        # A cell spread over several GPUs is timed on the host between full synchronisations of
        # every device: events on one device would miss work still running on the others.
        self.n_devices = n_devices if self.device.type == "cuda" else 1
        self.cuda = self.device.type == "cuda" and self.n_devices == 1
        self.warmup_steps = warmup_steps
        self.times: list[float] = []
        self.tokens: list[int] = []
        self._t0 = 0.0
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    @classmethod
    def for_cell(cls, context: TrackerContext) -> StepTimeTracker:
        return cls(context.device, context.cell.warmup_steps, n_devices=context.n_devices)

    def start(self, training: TrainingStart | None = None) -> None:
        self.times, self.tokens = [], []

    def phase(self, name: str) -> None:
        pass

    def on_eval(self, step: int, dev_loss: float | None, params: list[torch.Tensor] | None) -> list[Event]:
        return []

    def before_step(self, step: int) -> None:
        if self.cuda:
            self._start.record()
        else:
            self._sync_all()
            self._t0 = time.perf_counter()

    def after_step(self, step: int, loss: float, tokens: int = 0) -> list[Event]:
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.times.append(self._start.elapsed_time(self._end) / 1000)
        else:
            self._sync_all()
            self.times.append(time.perf_counter() - self._t0)
        self.tokens.append(tokens)
        return []

    def _sync_all(self) -> None:
        if self.n_devices > 1:
            from zobench.run.multigpu import sync_all

            sync_all(self.n_devices)

    @property
    def last(self) -> float:
        return self.times[-1] if self.times else float("nan")

    def elapsed(self) -> float:
        """Training time so far, all steps: what time-to-target counts."""
        return sum(self.times)

    def stop(self) -> dict[str, Any]:
        measured = self.times[self.warmup_steps :]
        out: dict[str, Any] = {"warmup_steps": min(self.warmup_steps, len(self.times)),
                               "timed_steps": len(measured), "train_time_s": sum(self.times)}
        if not measured:
            return {**out, "step_time_s": None, "step_time_mean_s": None, "tokens_per_s": None}
        return {
            **out,
            "step_time_s": statistics.median(measured),
            "step_time_mean_s": statistics.fmean(measured),
            "step_time_p90_s": statistics.quantiles(measured, n=10)[-1] if len(measured) > 1 else measured[0],
            "tokens_per_s": sum(self.tokens[self.warmup_steps :]) / sum(measured),
        }

    def finish(self, failed: bool) -> Measured:
        """The statistics and the per-step series; nothing after a failure (no run to time)."""
        if failed:
            return Measured()
        return Measured(metrics=self.stop(), series={"step_time_s": self.times})
