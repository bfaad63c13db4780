"""GLUE SST-2 with MeZO's prompt: ``<sentence> It was`` → terrible / great."""

from __future__ import annotations

from pathlib import Path

from zobench.api import Task
from zobench.tasks import Example, Splits
from zobench.tasks._data import hub_split, mezo_splits, read_tsv

OPTIONS = ("terrible", "great")  # MeZO SST2Template verbalizer: 0 → terrible, 1 → great


def to_example(row: dict) -> Example:
    return Example(prompt=f"{row['sentence'].strip()} It was", options=OPTIONS, label=int(row["label"]))


class SST2(Task):
    name = "sst2"
    version = "1"
    synthetic = False
    description = "GLUE SST-2, MeZO prompt '<sentence> It was' → terrible/great"
    default_sizes = {"train": 1000, "dev": 500, "test": 1000}
    train_loss = "classification"

    def load(self, data_dir: Path | None, sizes: dict[str, int], data_seed: int) -> Splits:
        local = data_dir / "glue" / "SST-2" if data_dir else None
        if local and (local / "train.tsv").is_file() and (local / "dev.tsv").is_file():
            train_rows, valid_rows = read_tsv(local / "train.tsv"), read_tsv(local / "dev.tsv")
            source = str(local)
        else:
            need = "sst2 needs glue/SST-2/{train,dev}.tsv"
            train_rows = hub_split("nyu-mll/glue", "sst2", "train", need)
            valid_rows = hub_split("nyu-mll/glue", "sst2", "validation", need)
            source = "hf:nyu-mll/glue/sst2"
        train, dev, test = mezo_splits(train_rows, valid_rows, sizes, data_seed, to_example)
        return Splits(train, dev, test, source)


TASK = SST2()
