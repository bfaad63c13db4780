"""SQuAD v1.1 with MeZO's template (SQuADv2Template): ``Title: ..\\nContext: ..\\nQuestion: ..\\nAnswer:``.

Greedy generation, scored by SQuAD-normalised F1 (and EM) against every gold answer; trained
on the first answer's tokens. Source: hub ``rajpurkar/squad`` or ``<data_dir>/squad/{train,val}.jsonl``.
"""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._generation import GenerationTask, generation_example, hub_rows
from zobench.tasks._superglue import Source


class SQuAD(GenerationTask):
    name = "squad"
    version = "1"
    description = "SQuAD v1.1, MeZO prompt 'Title/Context/Question/Answer:', greedy generation, F1"
    source = Source("squad", "rajpurkar/squad", None, hub_rows, root=".")

    def to_example(self, row: dict) -> Example:
        prompt = f"Title: {row['title']}\nContext: {row['context']}\nQuestion: {row['question'].strip()}\nAnswer:"
        return generation_example(prompt, list(row["answers"]["text"]), f"SQuAD question {row.get('id')}")


TASK = SQuAD()
