"""The cell's one measurement object: every registered tracker behind the Tracker protocol.

The worker makes one ``Measurement`` per cell and calls it where the protocol says (zobench/api.py);
it fans each call out in registration order (``after_step`` in reverse, so the step timer brackets
only the step) and hands back the events the trackers saw, for the worker's stop rules. At the end,
also after a failure, ``fold_into`` puts what they measured into the record, once.
Usage: ``m = Measurement.for_cell(context); m.phase("load"); ...; m.fold_into(record, failed=False)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zobench.api import Event, Tracker, TrackerContext, TrainingStart
from zobench.measure import registry
from zobench.measure.memory import PhaseMemory
from zobench.measure.step_time import StepTimeTracker

if TYPE_CHECKING:
    from zobench.run.cell_record import CellRecord


class Measurement:
    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers
        self.timer = self._the(StepTimeTracker)  # the loop reads the training time (time-to-target)
        self.memory = self._the(PhaseMemory)  # and the peak so far (progress lines)
        self.folded = False

    @classmethod
    def for_cell(cls, context: TrackerContext) -> Measurement:
        return cls([make(context) for make in registry.TRACKERS])

    def _the(self, kind: type) -> Any:
        found = [t for t in self.trackers if isinstance(t, kind)]
        if len(found) != 1:
            raise RuntimeError(f"the tracker registry must list one {kind.__name__}: the worker's loop reads it")
        return found[0]

    def phase(self, name: str) -> None:
        for tracker in self.trackers:
            tracker.phase(name)

    def start(self, training: TrainingStart) -> None:
        for tracker in self.trackers:
            tracker.start(training)

    def before_step(self, step: int) -> None:
        for tracker in self.trackers:
            tracker.before_step(step)

    def after_step(self, step: int, loss: float, tokens: int) -> list[Event]:
        return [event for tracker in reversed(self.trackers) for event in tracker.after_step(step, loss, tokens)]

    def on_eval(self, step: int, dev_loss: float | None, params: list | None) -> list[Event]:
        return [event for tracker in self.trackers for event in tracker.on_eval(step, dev_loss, params)]

    def fold_into(self, record: CellRecord, failed: bool) -> None:
        """Every tracker's ``finish`` into the record; a second call does nothing (the failure path
        calls it again after a failure inside the first)."""
        if self.folded:
            return
        self.folded = True
        for tracker in self.trackers:
            record.add(tracker.finish(failed))
