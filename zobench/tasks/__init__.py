"""Tasks: where examples come from and how they are prompted. One module per task.

A task module defines ``TASK`` with ``name``, ``version``, ``synthetic``, ``description``,
``default_sizes``, ``train_loss`` and ``load(data_dir, sizes, data_seed) -> Splits``.
Prompting follows MeZO: each example is a prompt plus candidate options, scored by
log-likelihood. ``train_loss`` is how MeZO trains the task: ``classification`` (its
``--train_as_classification``: cross-entropy over the option scores) or ``option-lm``
(teacher-forced LM loss on the gold option's tokens only, as MeZO runs COPA and ReCoRD).
Usage: ``get_task("sst2").load(data_dir, {"train": 1000, "dev": 500, "test": 1000}, 0)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

from zobench.api import UserError


TRAIN_LOSSES = ("classification", "option-lm")


@dataclasses.dataclass(frozen=True)
class Example:
    prompt: str
    options: tuple[str, ...]  # each appended to the prompt after ``sep``
    label: int  # index of the gold option (the one option-lm trains on)
    # MeZO's templates join prompt and option with a space ("It was great"), except prompts
    # that end in a newline ("Yes or No?\nYes"), which take the option directly.
    sep: str = " "
    # Options that also count as a correct prediction (ReCoRD lists several gold entities);
    # empty means only ``label``.
    also_correct: tuple[int, ...] = ()

    @property
    def correct(self) -> tuple[int, ...]:
        return tuple(sorted({self.label, *self.also_correct}))


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


def train_loss_of(task: Any) -> str:
    """The task's training loss; tasks that do not say train as classification, MeZO's default."""
    loss = getattr(task, "train_loss", "classification")
    if loss not in TRAIN_LOSSES:
        raise ValueError(f"task {task.name}: unknown train_loss {loss!r}; valid: {', '.join(TRAIN_LOSSES)}")
    return loss


def get_task(name: str) -> Any:
    names = task_names()
    if name not in names:
        raise UserError(f"unknown task '{name}'; valid tasks: {', '.join(names)}")
    return importlib.import_module(f"zobench.tasks.{name.replace('-', '_')}").TASK
