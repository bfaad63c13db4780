"""An embedded synthetic task for the quickstart: no files, no network. SYNTHETIC.

Each prompt mentions one object, and the answer is the bin (left / right) that object
belongs to under a fixed, arbitrary assignment. A pretrained model cannot know the
assignment, so its zero-shot accuracy sits near chance, while the assignment of 16
objects is learnable from a few hundred examples. Train, dev and test share the objects
but use disjoint parcel numbers, so test sentences are never seen in training.
Deterministic for a data seed and exactly label-balanced in every split.
"""

from __future__ import annotations

from pathlib import Path

from zobench.api import Task
from zobench.tasks import Example, Splits
from zobench.tasks._data import permuted

OPTIONS = ("left", "right")
# The arbitrary assignment: index 0 → left bin, index 1 → right bin.
OBJECTS = (
    ("lamp", "river", "violin", "carrot", "helmet", "candle", "turtle", "blanket"),
    ("ladder", "pepper", "anchor", "kettle", "parrot", "marble", "saddle", "tulip"),
)
TEMPLATES = (
    "The {obj} was moved to shelf {n}.",
    "Yesterday someone found a {obj} near door {n}.",
    "A {obj} arrived with parcel {n}.",
    "Please collect the {obj} from room {n}.",
)
NUMBERS = {"train": range(1, 41), "dev": range(41, 56), "test": range(56, 81)}


def pool(split: str, label: int) -> list[Example]:
    return [
        Example(prompt=f"{t.format(obj=o, n=n)} It goes in the bin on the", options=OPTIONS, label=label)
        for o in OBJECTS[label]
        for t in TEMPLATES
        for n in NUMBERS[split]
    ]


def balanced_sample(split: str, size: int, seed: int) -> list[Example]:
    """Half of each label (one extra of label 0 for odd sizes), interleaved."""
    by_label = [permuted(pool(split, label), seed + label) for label in (0, 1)]
    half = [(size + 1) // 2, size // 2]
    picked = [by_label[label][: half[label]] for label in (0, 1)]
    out = []
    for i in range(half[0]):
        out.append(picked[0][i])
        if i < len(picked[1]):
            out.append(picked[1][i])
    return out


class Synthetic(Task):
    name = "synthetic"
    version = "1"
    synthetic = True
    description = "SYNTHETIC embedded task: learn an arbitrary object → left/right bin assignment"
    default_sizes = {"train": 256, "dev": 64, "test": 128}
    train_loss = "classification"

    def load(self, data_dir: Path | None, sizes: dict[str, int], data_seed: int) -> Splits:
        return Splits(
            train=balanced_sample("train", sizes["train"], data_seed),
            dev=balanced_sample("dev", sizes["dev"], data_seed),
            test=balanced_sample("test", sizes["test"], data_seed),
            source="embedded",
        )


TASK = Synthetic()
