"""Declared valid ranges for numeric settings: suite settings and every method's hyperparameters.

A method declares a hyperparameter's range on its ``Args`` field, where the default lives
(``ranged`` and ``Range`` are declared in zobench.api; this module checks them)::

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

# Range and ranged are declared in zobench.api (methods import only it); kept importable from here.
from zobench.api import RANGE_KEY, Range, UserError, ranged  # noqa: F401
from zobench.paths import shorten


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
