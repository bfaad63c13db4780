"""SuperGLUE MultiRC with MeZO's prompt, one example per (paragraph, question, answer):
``<paragraph>\\nQuestion: <q>\\nI found this answer "<a>". Is that correct? Yes or No?\\n`` → No / Yes.

The release nests answers in questions in paragraphs; the hub (and so MeZO) flattens
them in that order, which is the order the data seed's permutation indexes.
"""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._superglue import SUPER_GLUE_HUB, Source, SuperGlueTask, mezo_prompt

OPTIONS = ("No", "Yes")  # MeZO MultiRCTemplate verbalizer: 0 (False) → No, 1 → Yes


def from_local(line: dict) -> list[dict]:
    passage = line["passage"]
    return [{"paragraph": passage["text"], "question": q["question"], "answer": a["text"],
             "idx": {"paragraph": line["idx"], "question": q["idx"], "answer": a["idx"]}, "label": int(a["label"])}
            for q in passage["questions"] for a in q["answers"]]


class MultiRC(SuperGlueTask):
    name = "multirc"
    version = "1"
    description = "SuperGLUE MultiRC, MeZO prompt '…I found this answer \"<a>\". Is that correct? Yes or No?' → No/Yes"
    source = Source("MultiRC", SUPER_GLUE_HUB, "multirc", from_local)

    def to_example(self, row: dict) -> Example:
        prompt = (f"{row['paragraph']}\nQuestion: {row['question']}\n"
                  f"I found this answer \"{row['answer']}\". Is that correct? Yes or No?\n")
        return Example(prompt=mezo_prompt(prompt), options=OPTIONS, label=int(row["label"]), sep="")


TASK = MultiRC()
