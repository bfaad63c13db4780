"""BoolQ with MeZO's default template (BoolQTemplateV3): ``<passage> <Question>?\\n`` → Yes / No.

MeZO loads ``boolq`` (now ``google/boolq``), whose passages are plain Wikipedia text.
The SuperGLUE release of the same examples prefixes each passage with its page title
(``"Ethanol fuel -- All biomass goes…"``); local release files get that prefix removed so
the prompt is MeZO's whichever source the data came from. No local copy of the training
split is staged (shared/data/MANIFEST.md), so training needs the hub or a local
``superglue/BoolQ/train.jsonl``.
"""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._superglue import Source, SuperGlueTask, mezo_prompt

OPTIONS = ("Yes", "No")  # MeZO: candidates ["Yes", "No"], "Yes" when the answer is true
TITLE_SEPARATOR = " -- "  # SuperGLUE's "<title> -- <passage>"


def from_local(line: dict) -> list[dict]:
    title, found, passage = line["passage"].partition(TITLE_SEPARATOR)
    if not found:
        raise ValueError(f"passage of idx {line['idx']} has no '<title>{TITLE_SEPARATOR}' prefix")
    return [{"question": line["question"], "answer": bool(line["label"]), "passage": passage}]


class BoolQ(SuperGlueTask):
    name = "boolq"
    version = "1"
    description = "BoolQ (google/boolq passages), MeZO prompt '<passage> <Question>?' → Yes/No"
    source = Source("BoolQ", "google/boolq", None, from_local)

    def to_example(self, row: dict) -> Example:
        question = row["question"] if row["question"].endswith("?") else row["question"] + "?"
        question = question[0].upper() + question[1:]
        prompt = f"{row['passage']} {question}\n"
        return Example(prompt=mezo_prompt(prompt), options=OPTIONS, label=0 if row["answer"] else 1, sep="")


TASK = BoolQ()
