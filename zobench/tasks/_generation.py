"""MeZO's generation tasks (SQuAD, DROP): the shared shape of their loaders and examples.

Neither dataset is staged in shared/data (MANIFEST.md: official-size copies could not be
obtained), so they come from the hub's parquet copies, or from a local folder
``<data_dir>/<folder>/{train,val}.jsonl`` holding the hub's rows, one JSON object per line
(``datasets.load_dataset(id, split=...).to_json(path)`` writes exactly that).
The example's one option is the first gold answer plus MeZO's closing newline: the
teacher-forced LM loss trains on it; evaluation generates and scores against every answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zobench.tasks import Example, Splits
from zobench.tasks._data import mezo_splits
from zobench.tasks._superglue import Source, load_rows, mezo_prompt


def hub_rows(line: dict[str, Any]) -> list[dict[str, Any]]:
    """Local files already hold the hub's rows."""
    return [line]


def generation_example(prompt: str, answers: list[str], where: str) -> Example:
    """MeZO's verbalisation: ``<prompt> <first answer>\\n``, trained on `` <answer>\\n``."""
    if not answers:
        raise ValueError(f"{where} has no gold answer")
    return Example(prompt=mezo_prompt(prompt), options=(f"{answers[0]}\n",), label=0, sep=" ",
                   answers=tuple(answers))


class GenerationTask:
    """MeZO's protocol over one generation task; subclasses give the source and the template."""

    synthetic = False
    train_loss = "option-lm"
    metric = "f1"
    default_sizes = {"train": 1000, "dev": 500, "test": 1000}
    name: str
    version: str
    description: str
    source: Source

    def to_example(self, row: dict[str, Any]) -> Example:
        raise NotImplementedError

    def load(self, data_dir: Path | None, sizes: dict[str, int], data_seed: int) -> Splits:
        train_rows, valid_rows, where = load_rows(self.name, data_dir, self.source)
        train, dev, test = mezo_splits(train_rows, valid_rows, sizes, data_seed, self.to_example)
        return Splits(train, dev, test, where)
