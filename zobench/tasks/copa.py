"""SuperGLUE COPA with MeZO's template: ``<premise without its period> so|because`` → the two
choices, first word lower-cased (except "I"). Trained on the gold choice's tokens (LM loss,
MeZO's ``--train_as_classification False``); predicted by mean option log-likelihood.

COPA has 400 training examples, so MeZO keeps only 100 for dev (``mezo.sh``): 300 train.
"""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._superglue import SUPER_GLUE_HUB, Source, SuperGlueTask, mezo_prompt

CONJUNCTIONS = {"effect": "so", "cause": "because"}


def from_local(line: dict) -> list[dict]:
    return [{k: line[k] for k in ("premise", "choice1", "choice2", "question", "idx", "label")}]


def lower_first_word(choice: str) -> str:
    """MeZO CopaTemplate's "correct" capitalisation: a choice continues the sentence."""
    words = choice.split(" ")
    if words[0] != "I":
        words[0] = words[0].lower()
    return " ".join(words)


class COPA(SuperGlueTask):
    name = "copa"
    version = "1"
    description = "SuperGLUE COPA, MeZO prompt '<premise> so|because' → the two choices; LM loss on the gold choice"
    default_sizes = {"train": 1000, "dev": 100, "test": 1000}
    train_loss = "option-lm"
    source = Source("COPA", SUPER_GLUE_HUB, "copa", from_local)

    def to_example(self, row: dict) -> Example:
        premise = row["premise"].rstrip()
        if premise.endswith("."):
            premise = premise[:-1]
        prompt = f"{premise} {CONJUNCTIONS[row['question']]}"
        options = tuple(lower_first_word(row[k]).rstrip(" ") for k in ("choice1", "choice2"))
        return Example(prompt=mezo_prompt(prompt), options=options, label=int(row["label"]), sep=" ")


TASK = COPA()
