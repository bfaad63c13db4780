"""LM-BFF k-shot tasks for encoders (MeZO's and AdaZeta's RoBERTa-large protocol).

MeZO's exact splits (``<data_dir>/lm-bff/k-shot-1k-test/<Task>/<k>-<seed>/``): k examples
per label for train and for dev, and a test set of up to 1000 examples that is the same
for every seed. There is no hub copy of these splits, so a missing folder is an error.
The data seed picks the split, so it must be one of LM-BFF's seeds; the roberta suite
sets ``data_seed: seed`` so the cell's seed picks it, as ``run_fewshot.sh`` does.

Templates, label words, sequence lengths and sentence limits are LM-BFF's
(MeZO medium_models/run_fewshot.sh); the readers follow its processors (the column each
sentence and label comes from, the label order that maps label words).
Task names: ``lmbff-<task>-k<k>``, e.g. ``lmbff-sst2-k16``.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Callable

import pandas as pd

from zobench.api import Task, UserError
from zobench.tasks import Example, MaskedPrompt, Splits
from zobench.tasks._data import DATA_DIR_ENV

SEEDS = (13, 21, 42, 87, 100)
KS = (16, 512)
ROOT = Path("lm-bff") / "k-shot-1k-test"
SENTIMENT = "*cls**sent_0*_It_was*mask*.*sep+*"
NLI = "*cls**sent-_0*?*mask*,*+sentl_1**sep+*"
Row = tuple[tuple[str, ...], str]  # (sentences, label as written in the file)


def glue_tsv(*columns: int) -> Callable[[Path], list[Row]]:
    """GLUE-layout TSV with a header: the sentences at ``columns``, the label in the last column
    (LM-BFF's _read_tsv: tab-separated, no quoting)."""
    def read(path: Path) -> list[Row]:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        return [(tuple(line[c] for c in columns), line[-1]) for line in lines]

    return read


def label_first_csv(path: Path) -> list[Row]:
    """LM-BFF's text-classification CSV (SST-5, TREC): no header, ``label,sentence`` (pandas quoting)."""
    frame = pd.read_csv(path, header=None, keep_default_na=False)
    return [((str(sentence),), str(label)) for label, sentence in frame.itertuples(index=False)]


@dataclasses.dataclass(frozen=True)
class Spec:
    folder: str
    read: Callable[[Path], list[Row]]
    files: tuple[str, str, str]  # train, dev, test
    labels: tuple[str, ...]  # LM-BFF get_labels(): label word i belongs to labels[i]
    words: tuple[str, ...]
    template: str
    max_length: int = 128
    first_sent_limit: int | None = None
    other_sent_limit: int | None = None


GLUE_FILES = ("train.tsv", "dev.tsv", "test.tsv")
CSV_FILES = ("train.csv", "dev.csv", "test.csv")
NLI_LABELS = ("contradiction", "entailment", "neutral")
SPECS = {
    "sst2": Spec("SST-2", glue_tsv(0), GLUE_FILES, ("0", "1"), ("terrible", "great"), SENTIMENT),
    "sst5": Spec("sst-5", label_first_csv, CSV_FILES, tuple(map(str, range(5))),
                 ("terrible", "bad", "okay", "good", "great"), SENTIMENT, first_sent_limit=110, other_sent_limit=20),
    "snli": Spec("SNLI", glue_tsv(7, 8), GLUE_FILES, NLI_LABELS, ("No", "Yes", "Maybe"), NLI, max_length=256),
    "mnli": Spec("MNLI", glue_tsv(8, 9), ("train.tsv", "dev_matched.tsv", "test_matched.tsv"), NLI_LABELS,
                 ("No", "Yes", "Maybe"), NLI, max_length=256, first_sent_limit=240),
    "rte": Spec("RTE", glue_tsv(1, 2), GLUE_FILES, ("entailment", "not_entailment"), ("Yes", "No"), NLI,
                max_length=256, first_sent_limit=240),
    "trec": Spec("trec", label_first_csv, CSV_FILES, tuple(map(str, range(6))),
                 ("Description", "Entity", "Expression", "Human", "Location", "Number"),
                 "*cls**mask*:*+sent_0**sep+*", first_sent_limit=110),
}


class KShotTask(Task):
    synthetic = False
    train_loss = "classification"
    model_kind = "encoder"
    # Every split is used whole (LM-BFF's files are the protocol); smaller sizes cap them.
    default_sizes = {"train": 1_000_000, "dev": 1_000_000, "test": 1_000_000}

    def __init__(self, key: str, k: int):
        self.spec = SPECS[key]
        self.k = k
        self.name = f"lmbff-{key}-k{k}"
        self.version = "1"
        self.label_words = self.spec.words
        self.num_labels = len(self.spec.labels)
        self.description = (f"LM-BFF {self.spec.folder} k={k} (MeZO's k-shot-1k-test splits), template "
                            f"{self.spec.template} with words {'/'.join(self.spec.words)}; encoders only")

    def to_example(self, row: Row, where: str) -> Example:
        sentences, label = row
        if label not in self.spec.labels:
            raise UserError(f"{where}: label {label!r} is not one of {', '.join(self.spec.labels)}")
        prompt = MaskedPrompt(self.spec.template, sentences, self.spec.max_length,
                              self.spec.first_sent_limit, self.spec.other_sent_limit)
        return Example(prompt=prompt, options=self.spec.words, label=self.spec.labels.index(label))

    def load(self, data_dir: Path | None, sizes: dict[str, int], data_seed: int) -> Splits:
        if data_seed not in SEEDS:
            raise UserError(f"{self.name}: LM-BFF splits exist for data seeds {', '.join(map(str, SEEDS))}, "
                            f"got {data_seed} (a suite's 'data_seed: seed' uses each cell's seed)")
        folder = ROOT / self.spec.folder / f"{self.k}-{data_seed}"
        if data_dir is None or not (data_dir / folder).is_dir():
            raise UserError(f"{self.name} needs {folder}/ under the data dir (no hub copy of MeZO's k-shot "
                            f"splits exists); pass --data-dir or set {DATA_DIR_ENV} to a folder laid out like shared/data")
        splits = []
        for split, file_name in zip(("train", "dev", "test"), self.spec.files):
            path = data_dir / folder / file_name
            try:
                rows = self.spec.read(path)
            except (OSError, IndexError, ValueError) as exc:
                raise UserError(f"{self.name}: cannot read {path} ({exc!r})") from None
            splits.append([self.to_example(row, f"{path} row {i + 1}") for i, row in enumerate(rows[: sizes[split]])])
        return Splits(*splits, source=str(data_dir / folder))


TASKS = [KShotTask(key, k) for key in SPECS for k in KS]
