"""Find methods (files in methods/) and build their typed Args from suite dictionaries.

The file name is the registry: no enum, decorator or mapping to keep in sync.
Usage: ``method_names()``, ``make_args("mezo", {"lr": 1e-6})``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing
from typing import Any

from zobench.api import UserError
from zobench.paths import shorten
from zobench.run.ranges import check_range, field_range


def method_names() -> list[str]:
    import zobench.methods

    # A method's name is its file name with "_" read as "-" (mezo_lora.py is `mezo-lora`).
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(zobench.methods.__path__)
                  if not m.name.startswith("_"))


def method_module(name: str) -> types.ModuleType:
    names = method_names()
    if name not in names:
        raise UserError(f"unknown method '{name}'; valid methods: {', '.join(names)}")
    return importlib.import_module(f"zobench.methods.{name.replace('-', '_')}")


def make_args(method: str, raw: dict[str, Any], where: str = "") -> Any:
    """Build ``<method>.Args`` from a dict, rejecting unknown keys and wrong types."""
    cls = method_module(method).Args
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    valid = list(fields)
    prefix = f"{where}: " if where else ""
    values = {}
    for key, value in raw.items():
        if key not in valid:
            raise UserError(
                f"{prefix}unknown hyperparameter {shorten(key)} for method '{method}'; valid: {', '.join(valid) or '(none)'}"
            )
        what = f"{prefix}hyperparameter '{key}' of method '{method}'"
        values[key] = _coerce(value, hints[key], what)
        check_range(values[key], field_range(fields[key]), what)  # the range the method declares
    return cls(**values)


def _coerce(value: Any, hint: Any, what: str) -> Any:
    """Check one value against a simple type hint (float, int, str, bool, Literal, X | None)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) == 1:
            return _coerce(value, options[0], what)
        return value
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise UserError(f"{what} is {shorten(value)}; valid: {', '.join(map(str, choices))}")
        return value
    if hint is float:
        # PyYAML reads `1e-6` (no dot) as a string, so accept numeric strings for floats.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise UserError(f"{what} must be {hint.__name__}, got {type(value).__name__} {shorten(value)}")


def args_dict(args: Any) -> dict[str, Any]:
    return dataclasses.asdict(args)
