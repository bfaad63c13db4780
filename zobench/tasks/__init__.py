"""Tasks: where examples come from and how they are prompted. One module per task.

A task module defines ``TASK`` with ``name``, ``version``, ``synthetic``, ``description``,
``default_sizes`` and ``load(data_dir, sizes, data_seed) -> Splits``. Prompting follows
MeZO: each example is a prompt plus candidate options, scored by log-likelihood.
Usage: ``get_task("sst2").load(data_dir, {"train": 1000, "dev": 500, "test": 1000}, 0)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

from zobench.api import UserError


@dataclasses.dataclass(frozen=True)
class Example:
    prompt: str
    options: tuple[str, ...]  # appended to the prompt after one space
    label: int  # index of the correct option


@dataclasses.dataclass(frozen=True)
class Splits:
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    source: str  # where the data came from: a path, "hf:<id>" or "embedded"

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)}


def task_names() -> list[str]:
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_task(name: str) -> Any:
    names = task_names()
    if name not in names:
        raise UserError(f"unknown task '{name}'; valid tasks: {', '.join(names)}")
    return importlib.import_module(f"zobench.tasks.{name.replace('-', '_')}").TASK
