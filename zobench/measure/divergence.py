"""Divergence events:
- ``non_finite_loss``: the training loss is NaN or infinite;
- ``loss_spike``: the training loss exceeds ``spike_factor`` × the running median of the last ``window``;
- ``restore_drift`` (step -1, before training): one perturb/perturb/restore cycle moved the
  weights by more (RMS) than the learning rate, the typical size of one ZO update for
  |g·z| ≈ 1; in fp16/bf16 the weights then random-walk faster than they learn (MeZO#42).
  A heuristic threshold, stated as such (the max is recorded too, but one ulp of a large
  weight says little about the walk);
- ``non_finite_params``: a trainable tensor holds NaN or infinity, checked at every dev
  evaluation and after training. The loss can stay finite while the weights are gone (SGD at
  lr 1e9 saturates the logits: the loss sits at ln 2), so the loss alone cannot tell;
- ``eval_loss_rebound``: the dev loss rises ``rebound_delta`` above its running minimum (the
  AdaZeta paper's MeZO-LoRA SST-2 curve rose 0.34 within ~600 steps). Reported once per
  rise: it re-arms when the dev loss sets a new minimum.
It only records events; the worker applies the suite's policy (stop the cell or count).
A Tracker (zobench/api.py): the probe's restore drift arrives with ``start``, the dev losses and
the trained tensors with ``on_eval``.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

import torch

from zobench.api import Event, Measured, TrackerContext, TrainingStart


class DivergenceTracker:
    def __init__(self, spike_factor: float = 3.0, rebound_delta: float = 0.3, window: int = 20, min_history: int = 5):
        self.spike_factor = spike_factor
        self.rebound_delta = rebound_delta
        self.window = window
        self.min_history = min_history
        self.events: list[dict[str, Any]] = []
        self._recent: deque[float] = deque(maxlen=window)
        self._eval_min = math.inf
        self._rebound_armed = True

    @classmethod
    def for_cell(cls, context: TrackerContext) -> DivergenceTracker:
        return cls(context.cell.spike_factor, context.cell.rebound_delta)

    def start(self, training: TrainingStart | None = None) -> None:
        self.events = []
        self._recent.clear()
        if training is not None and training.restore_drift_rms is not None:
            self.on_restore_drift(training.restore_drift_rms, training.drift_limit)

    def phase(self, name: str) -> None:
        pass

    def before_step(self, step: int) -> None:
        pass

    def after_step(self, step: int, loss: float, tokens: int = 0) -> list[Event]:
        """Record this step's events and return them (the worker's policy looks at them)."""
        new: list[dict[str, Any]] = []
        if not math.isfinite(loss):
            new.append({"step": step, "kind": "non_finite_loss", "loss": repr(loss)})
        else:
            if len(self._recent) >= self.min_history:
                median = statistics.median(self._recent)
                if median > 0 and loss > self.spike_factor * median:
                    new.append({"step": step, "kind": "loss_spike", "loss": loss, "running_median": median})
            self._recent.append(loss)
        self.events += new
        return new

    def on_eval(self, step: int, dev_loss: float | None, params: list[torch.Tensor] | None = None) -> list[Event]:
        """The dev loss's events (none without one), then the trained tensors' (none before training)."""
        new = self._on_dev_loss(step, dev_loss) if dev_loss is not None else []
        return new + (self.on_params(step, params) if params is not None else [])

    def _on_dev_loss(self, step: int, eval_loss: float) -> list[Event]:
        new: list[Event] = []
        if not math.isfinite(eval_loss):
            new.append({"step": step, "kind": "non_finite_eval_loss", "loss": repr(eval_loss)})
        elif eval_loss < self._eval_min:
            self._eval_min, self._rebound_armed = eval_loss, True
        elif self._rebound_armed and eval_loss > self._eval_min + self.rebound_delta:
            new.append({"step": step, "kind": "eval_loss_rebound", "loss": eval_loss, "running_min": self._eval_min})
            self._rebound_armed = False
        self.events += new
        return new

    def on_params(self, step: int, params: list[torch.Tensor]) -> list[dict[str, Any]]:
        """A ``non_finite_params`` event when any trainable tensor is no longer finite."""
        with torch.no_grad():
            bad = sum(1 for p in {id(p): p for p in params}.values() if not bool(torch.isfinite(p).all()))
        new = [{"step": step, "kind": "non_finite_params", "tensors": bad}] if bad else []
        self.events += new
        return new

    def on_restore_drift(self, drift_rms: float, lr: float) -> list[dict[str, Any]]:
        new = []
        if not math.isfinite(drift_rms) or drift_rms > lr:
            new.append({"step": -1, "kind": "restore_drift", "drift_rms": drift_rms, "lr": lr})
        self.events += new
        return new

    def stop(self) -> dict[str, Any]:
        return {"divergence_events": len(self.events), "divergence": list(self.events)}

    def finish(self, failed: bool) -> Measured:
        """The event count and the events (the record's ``divergence`` section); nothing after a failure."""
        if failed:
            return Measured()
        out = self.stop()
        return Measured(metrics={"divergence_events": out["divergence_events"]}, details={"divergence": out["divergence"]})
