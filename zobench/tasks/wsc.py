"""SuperGLUE WSC (the ``wsc.fixed`` span correction) with MeZO's prompt:
``<text>\\nIn the previous sentence, does the pronoun "<span2, lower-cased>" refer to <span1>? Yes or No?\\n``.

WSC has 554 training examples and MeZO's script keeps dev at 500 for it, so the default
split is 54 train / 500 dev, exactly as MeZO ran it (the reference brief notes this).
"""

from __future__ import annotations

from zobench.tasks import Example
from zobench.tasks._superglue import SUPER_GLUE_HUB, Source, SuperGlueTask, label_index, mezo_prompt

OPTIONS = ("No", "Yes")  # MeZO WSCTemplate verbalizer: 0 (False) → No, 1 → Yes


def from_local(line: dict) -> list[dict]:
    target = line["target"]
    return [{"text": line["text"], "span1_index": target["span1_index"], "span2_index": target["span2_index"],
             "span1_text": target["span1_text"], "span2_text": target["span2_text"], "idx": line["idx"],
             "label": label_index(line["label"], ("False", "True"))}]


class WSC(SuperGlueTask):
    name = "wsc"
    version = "1"
    description = "SuperGLUE WSC (wsc.fixed), MeZO prompt '…does the pronoun \"<p>\" refer to <n>? Yes or No?' → No/Yes"
    # The release folder with the wsc.fixed correction applied (see shared/data/MANIFEST.md).
    source = Source("WSC.fixed", SUPER_GLUE_HUB, "wsc.fixed", from_local)

    def to_example(self, row: dict) -> Example:
        prompt = (f"{row['text']}\nIn the previous sentence, does the pronoun \"{row['span2_text'].lower()}\" "
                  f"refer to {row['span1_text']}? Yes or No?\n")
        return Example(prompt=mezo_prompt(prompt), options=OPTIONS, label=int(row["label"]), sep="")


TASK = WSC()
