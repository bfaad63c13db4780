"""Where task data comes from, and MeZO's split sampling.

Order of sources: ``--data-dir`` / ``ZOBENCH_DATA_DIR`` (laid out like shared/data),
then the Hugging Face hub through ``datasets`` (parquet copies). Offline with neither,
the error names the setting to use.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from zobench.api import UserError

T = TypeVar("T")
DATA_DIR_ENV = "ZOBENCH_DATA_DIR"


def resolve_data_dir(value: str | os.PathLike | None) -> Path | None:
    """The data dir from the CLI value, else from $ZOBENCH_DATA_DIR, else None (hub only)."""
    chosen = value if value is not None else os.environ.get(DATA_DIR_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"data dir '{chosen}' does not exist; pass --data-dir or set {DATA_DIR_ENV} to a folder laid out like shared/data")
    return path


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def hub_split(dataset_id: str, config: str | None, split: str, needed_for: str) -> list[dict[str, Any]]:
    """Load one split from the HF hub, or fail with a message naming the local-data setting."""
    try:
        import datasets

        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # offline, missing package, gated repo...
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"{needed_for}: no local copy and the hub load of '{dataset_id}' failed ({first_line[:200]}); "
            f"pass --data-dir or set {DATA_DIR_ENV} to a folder laid out like shared/data"
        ) from exc
    return list(ds)


def permuted(items: Sequence[T], seed: int) -> list[T]:
    """MeZO's ``temp_seed(seed); np.random.permutation(len)``: the legacy numpy stream."""
    order = np.random.RandomState(seed).permutation(len(items))
    return [items[i] for i in order]


def mezo_splits(
    train_pool: Sequence[T], valid_pool: Sequence[T], sizes: dict[str, int], seed: int, convert: Callable[[T], Any]
) -> tuple[list, list, list]:
    """MeZO's sampling: train+dev drawn from the train split (dev = the last ``dev``),
    test = up to ``test`` examples drawn from the validation split."""
    drawn = permuted(train_pool, seed)[: sizes["train"] + sizes["dev"]]
    n_dev = min(sizes["dev"], len(drawn))
    train, dev = drawn[: len(drawn) - n_dev], drawn[len(drawn) - n_dev :]
    test = permuted(valid_pool, seed)[: sizes["test"]]
    return [convert(x) for x in train], [convert(x) for x in dev], [convert(x) for x in test]
