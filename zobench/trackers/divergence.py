"""Divergence events: a non-finite loss, or a loss spike above ``factor`` × the running median.

It only counts and lists events; whether a non-finite loss stops the cell is one visible
line in the worker.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any


class DivergenceTracker:
    def __init__(self, spike_factor: float = 3.0, window: int = 20, min_history: int = 5):
        self.spike_factor = spike_factor
        self.window = window
        self.min_history = min_history
        self.events: list[dict[str, Any]] = []
        self._recent: deque[float] = deque(maxlen=window)

    def start(self) -> None:
        self.events = []
        self._recent.clear()

    def before_step(self, step: int) -> None:
        pass

    def after_step(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            self.events.append({"step": step, "kind": "non_finite_loss", "loss": repr(loss)})
            return
        if len(self._recent) >= self.min_history:
            median = statistics.median(self._recent)
            if median > 0 and loss > self.spike_factor * median:
                self.events.append({"step": step, "kind": "loss_spike", "loss": loss, "running_median": median})
        self._recent.append(loss)

    def stop(self) -> dict[str, Any]:
        return {"divergence_events": len(self.events), "divergence": list(self.events)}
