"""SuperGLUE RTE with MeZO's prompt: ``<premise>\\nDoes this mean that "<hypothesis>" is true? Yes or No?\\n`` → Yes / No."""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._superglue import SUPER_GLUE_HUB, Source, SuperGlueTask, mezo_prompt, premise_hypothesis_rows

LABELS = ("entailment", "not_entailment")  # the hub's class order
OPTIONS = ("Yes", "No")  # MeZO RTETemplate verbalizer: 0 (entailment) → Yes, 1 → No
from_local = premise_hypothesis_rows(LABELS)


class RTE(SuperGlueTask):
    name = "rte"
    version = "1"
    description = "SuperGLUE RTE, MeZO prompt '…Does this mean that \"<h>\" is true? Yes or No?' → Yes/No"
    source = Source("RTE", SUPER_GLUE_HUB, "rte", from_local)

    def to_example(self, row: dict) -> Example:
        prompt = f"{row['premise']}\nDoes this mean that \"{row['hypothesis']}\" is true? Yes or No?\n"
        return Example(prompt=mezo_prompt(prompt), options=OPTIONS, label=int(row["label"]), sep="")


TASK = RTE()
