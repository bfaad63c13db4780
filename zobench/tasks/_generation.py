"""MeZO's generation tasks (SQuAD, DROP): the shared shape of their loaders and examples.

Neither dataset is staged in shared/data (MANIFEST.md: official-size copies could not be
obtained), so they come from the hub's parquet copies, or from a local folder
``<data_dir>/<folder>/{train,val}.jsonl`` holding the hub's rows, one JSON object per line
(``datasets.load_dataset(id, split=...).to_json(path)`` writes exactly that).
The example's one option is the first gold answer plus MeZO's closing newline: the
teacher-forced LM loss trains on it; evaluation generates and scores against every answer.
"""

from __future__ import annotations

from typing import Any

from zobench.tasks import Example
from zobench.tasks._superglue import SuperGlueTask, mezo_prompt


def hub_rows(line: dict[str, Any]) -> list[dict[str, Any]]:
    """Local files already hold the hub's rows."""
    return [line]


def generation_example(prompt: str, answers: list[str], where: str) -> Example:
    """MeZO's verbalisation: ``<prompt> <first answer>\\n``, trained on `` <answer>\\n``."""
    if not answers:
        raise ValueError(f"{where} has no gold answer")
    return Example(prompt=mezo_prompt(prompt), options=(f"{answers[0]}\n",), label=0, sep=" ",
                   answers=tuple(answers))


class GenerationTask(SuperGlueTask):
    """MeZO's protocol (sampling, sources) as for SuperGLUE, trained on the answer, scored by F1."""

    train_loss = "option-lm"
    metric = "f1"
