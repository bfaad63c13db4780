"""The trackers every cell runs, one line each: a TrackerFactory (TrackerContext → Tracker, zobench/api.py).

Adding a tracker: its own file in zobench/measure/ with a ``for_cell(context)`` classmethod, and one
line below; its metrics, series and record sections then appear in every record. The order matters:
``before_step`` runs down this list and ``after_step`` up it, so the step timer, last, brackets only
the method's step; memory comes first, so its baseline is the process before the others exist.
The worker's policy reads the step timer (time-to-target) and the memory (peak so far): they must stay.
"""

from __future__ import annotations

from zobench.api import TrackerFactory
from zobench.measure.divergence import DivergenceTracker
from zobench.measure.memory import PhaseMemory
from zobench.measure.step_time import StepTimeTracker

TRACKERS: list[TrackerFactory] = [
    PhaseMemory.for_cell,  # starts the monitor process (measure/monitor.py) and composes it
    DivergenceTracker.for_cell,
    StepTimeTracker.for_cell,  # last: innermost around the step
]
