"""SuperGLUE WiC with MeZO's prompt: ``Does the word "<w>" have the same meaning in these two sentences? Yes, No?\\n<s1>\\n<s2>\\n``."""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._superglue import SUPER_GLUE_HUB, Source, SuperGlueTask, label_index, mezo_prompt

OPTIONS = ("No", "Yes")  # MeZO WICTemplate verbalizer: 0 (False) → No, 1 → Yes
FIELDS = ("word", "sentence1", "sentence2", "start1", "start2", "end1", "end2", "idx")


def from_local(line: dict) -> list[dict]:
    return [{**{k: line[k] for k in FIELDS}, "label": label_index(line["label"], ("False", "True"))}]


class WiC(SuperGlueTask):
    name = "wic"
    version = "1"
    description = "SuperGLUE WiC, MeZO prompt 'Does the word \"<w>\" have the same meaning in these two sentences? Yes, No?' → No/Yes"
    source = Source("WiC", SUPER_GLUE_HUB, "wic", from_local)

    def to_example(self, row: dict) -> Example:
        prompt = (f"Does the word \"{row['word']}\" have the same meaning in these two sentences? Yes, No?\n"
                  f"{row['sentence1']}\n{row['sentence2']}\n")
        return Example(prompt=mezo_prompt(prompt), options=OPTIONS, label=int(row["label"]), sep="")


TASK = WiC()
