"""SuperGLUE ReCoRD with MeZO's GPT-3-style template: the passage with ``@highlight\\n`` → ``- ``,
then ``\\n-``; each candidate entity gives the option ``- <query with @placeholder → entity>``.

Trained on the first gold answer's tokens (LM loss, MeZO's ``--train_as_classification
False``). A prediction is correct if it is any of the gold answers, as MeZO's metric.
Candidates are the passage's distinct entity strings, sorted (the hub's ``entities``).
Not staged locally (too large; shared/data/MANIFEST.md): it needs the hub or a local
``superglue/ReCoRD/{train,val}.jsonl`` release.
"""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._superglue import SUPER_GLUE_HUB, Source, SuperGlueTask, mezo_prompt


def from_local(line: dict) -> list[dict]:
    """The hub's layout: one row per query; entities and answers as sorted distinct strings."""
    text = line["passage"]["text"]
    entities = sorted({text[e["start"] : e["end"] + 1] for e in line["passage"]["entities"]})  # end is inclusive
    return [{"passage": text, "query": qa["query"], "entities": entities,
             "answers": sorted({a["text"] for a in qa.get("answers", [])}),
             "idx": {"passage": line["idx"], "query": qa["idx"]}} for qa in line["qas"]]


class ReCoRD(SuperGlueTask):
    name = "record"
    version = "1"
    description = "SuperGLUE ReCoRD, MeZO GPT-3 prompt; options '- <query with entity>'; LM loss on the gold option"
    train_loss = "option-lm"
    source = Source("ReCoRD", SUPER_GLUE_HUB, "record", from_local)

    def to_example(self, row: dict) -> Example:
        entities, answers = list(row["entities"]), list(row["answers"])
        missing = [a for a in answers if a not in entities]
        if not answers or missing:
            raise ValueError(f"ReCoRD query {row['idx']}: gold answers {missing or answers} are not among its entities")
        passage = row["passage"].replace("@highlight\n", "- ")
        options = tuple(row["query"].replace("@placeholder", e).rstrip(" ") for e in entities)
        return Example(prompt=mezo_prompt(f"{passage}\n-"), options=options, label=entities.index(answers[0]),
                       sep=" ", also_correct=tuple(entities.index(a) for a in answers[1:]))


TASK = ReCoRD()
