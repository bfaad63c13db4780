"""DROP with MeZO's template (DROPTemplate): ``Passage: ..\\nQuestion: ..\\nAnswer:``.

Greedy generation, scored by SQuAD-normalised F1 (and EM) against the answer spans, as
MeZO's Table 1 (not DROP's own numeric F1); trained on the first span's tokens.
Source: hub ``ucinlp/drop`` (MeZO's ``drop``) or ``<data_dir>/drop/{train,val}.jsonl``.
"""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._generation import GenerationTask, generation_example, hub_rows
from zobench.tasks._superglue import Source


class DROP(GenerationTask):
    name = "drop"
    version = "1"
    description = "DROP, MeZO prompt 'Passage/Question/Answer:', greedy generation, SQuAD F1"
    source = Source("drop", "ucinlp/drop", None, hub_rows, root=".")

    def to_example(self, row: dict) -> Example:
        prompt = f"Passage: {row['passage']}\nQuestion: {row['question'].strip()}\nAnswer:"
        return generation_example(prompt, list(row["answers_spans"]["spans"]), f"DROP query {row.get('query_id')}")


TASK = DROP()
