"""Tasks: where examples come from and how they are prompted. One module per task.

A task module defines ``TASK`` (or ``TASKS``, a list, for a family of tasks such as one
per sequence length): an instance of a class that subclasses ``zobench.api.Task``, which
declares the attributes (``name``, ``version``, ``synthetic``, ``description``,
``default_sizes``, ``load(data_dir, sizes, data_seed) -> Splits``) and the defaults of the
optional ones: ``train_loss`` (MeZO trains as ``classification`` unless a task says
``option-lm``, as COPA, ReCoRD, SQuAD and DROP do), ``metric`` (``accuracy``; ``f1`` for
generation against ``Example.answers``), ``model_kind`` (``decoder``; the LM-BFF k-shot
tasks are ``encoder`` tasks with ``label_words`` and ``num_labels``) and
``sequence_length`` (suites check a fixed length against ``max_length``). Prompting follows
MeZO: each example is a prompt plus candidate options, scored by log-likelihood
(zobench.scoring). A prompt is text, or ``RandomTokens`` for token-id inputs.
Usage: ``get_task("sst2").load(data_dir, {"train": 1000, "dev": 500, "test": 1000}, 0)``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
import re

from zobench.api import Task, UserError


@dataclasses.dataclass(frozen=True)
class RandomTokens:
    """A prompt of random token ids, drawn when encoding from the tokenizer's own vocabulary.

    Text cannot promise a token count across tokenizers (merges differ), so memory
    benchmarks that need exact lengths give ids instead: the encoded sequence (special
    prefix, prompt and one-token option) is exactly ``length`` tokens for any tokenizer.
    ``seed`` fixes the draw, so the same example encodes to the same ids every time.
    """

    length: int
    seed: int


@dataclasses.dataclass(frozen=True)
class MaskedPrompt:
    """An LM-BFF prompt for encoders: a template over the example's sentences, with one mask.

    The template language is LM-BFF's (``*cls**sent_0*_It_was*mask*.*sep+*``; see
    zobench.scoring.encoder); the options are the label words predicted at the mask.
    ``max_length`` and the sentence limits are LM-BFF's per-task settings (run_fewshot.sh).
    A classifier-head model reads only the sentences (LM-BFF's "finetune" input).
    """

    template: str
    sentences: tuple[str, ...]
    max_length: int = 128
    first_sent_limit: int | None = None
    other_sent_limit: int | None = None


@dataclasses.dataclass(frozen=True)
class Example:
    # RandomTokens: each option is one random token; the strings only name them.
    # MaskedPrompt: encoder tasks; each option is a label word.
    prompt: str | RandomTokens | MaskedPrompt
    options: tuple[str, ...]  # each appended to the prompt after ``sep``
    label: int  # index of the gold option (the one option-lm trains on)
    # MeZO's templates join prompt and option with a space ("It was great"), except prompts
    # that end in a newline ("Yes or No?\nYes"), which take the option directly.
    sep: str = " "
    # Options that also count as a correct prediction (ReCoRD lists several gold entities);
    # empty means only ``label``.
    also_correct: tuple[int, ...] = ()
    # Generation tasks (SQuAD, DROP): every gold answer; the one option is the first answer
    # plus MeZO's closing newline, which the LM loss trains on. Empty for choice tasks.
    answers: tuple[str, ...] = ()

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


@functools.cache
def _registry() -> dict[str, Task]:
    """Every task by name. Task modules import nothing heavy at import time (data loads lazily)."""
    tasks = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"zobench.tasks.{info.name}")
        for task in getattr(module, "TASKS", None) or [module.TASK]:
            if task.name in tasks:
                raise RuntimeError(f"task name '{task.name}' is defined twice (zobench.tasks.{info.name})")
            tasks[task.name] = task
    return tasks


def task_names() -> list[str]:
    """Sorted with numbers as numbers: random-tokens-64 before random-tokens-512."""
    return sorted(_registry(), key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def get_task(name: str) -> Task:
    tasks = _registry()
    if name not in tasks:
        raise UserError(f"unknown task '{name}'; valid tasks: {', '.join(sorted(tasks))}")
    return tasks[name]
