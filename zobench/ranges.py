"""Declared valid ranges for numeric settings: suite settings and every method's hyperparameters.

A method declares a hyperparameter's range on its ``Args`` field, where the default lives::

    lr: float = ranged(1e-6, gt=0)
    queries: int = ranged(1, ge=1)

``zobench.registry.make_args`` reads the declaration (field metadata, not the name) and
refuses a value outside it before the first cell starts. Every float, declared or not, must
be finite: NaN and infinities are never a hyperparameter.
Usage: ``check_range(0, Range(ge=1), "suite x: steps")`` raises UserError naming the range.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from zobench.api import UserError
from zobench.paths import shorten

RANGE_KEY = "zobench_range"


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds on a number: ``ge``/``le`` inclusive, ``gt``/``lt`` exclusive; None: unbounded."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def contains(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        parts = [f"{op} {bound:g}" for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if bound is not None]
        return " and ".join(parts) or "finite"


def ranged(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None) -> Any:
    """A dataclass field with ``default`` and a declared valid range (read by check_args)."""
    return dataclasses.field(default=default, metadata={RANGE_KEY: Range(ge=ge, gt=gt, le=le, lt=lt)})


def field_range(field: dataclasses.Field) -> Range | None:
    return field.metadata.get(RANGE_KEY)


def check_range(value: Any, bounds: Range | None, what: str) -> None:
    """UserError unless ``value`` (a number) is finite and inside ``bounds``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{what} is {shorten(value)}; valid: a finite number"
                        + (f" {bounds.describe()}" if bounds else ""))
    if bounds is not None and not bounds.contains(value):
        raise UserError(f"{what} is {shorten(value)}; valid: {bounds.describe()}")
