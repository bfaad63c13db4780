"""SuperGLUE CB with MeZO's prompt: ``Suppose <premise> Can we infer that "<hypothesis>"? Yes, No, or Maybe?\\n``.

CB has 250 training examples, so MeZO keeps only 100 for dev (``mezo.sh``): 150 train.
"""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._superglue import SUPER_GLUE_HUB, Source, SuperGlueTask, mezo_prompt, premise_hypothesis_rows

LABELS = ("entailment", "contradiction", "neutral")  # the hub's class order
OPTIONS = ("Yes", "No", "Maybe")  # MeZO CBTemplate verbalizer, in that class order
from_local = premise_hypothesis_rows(LABELS)


class CB(SuperGlueTask):
    name = "cb"
    version = "1"
    description = "SuperGLUE CB, MeZO prompt 'Suppose <p> Can we infer that \"<h>\"? Yes, No, or Maybe?' → Yes/No/Maybe"
    default_sizes = {"train": 1000, "dev": 100, "test": 1000}
    source = Source("CB", SUPER_GLUE_HUB, "cb", from_local)

    def to_example(self, row: dict) -> Example:
        prompt = f"Suppose {row['premise']} Can we infer that \"{row['hypothesis']}\"? Yes, No, or Maybe?\n"
        return Example(prompt=mezo_prompt(prompt), options=OPTIONS, label=int(row["label"]), sep="")


TASK = CB()
