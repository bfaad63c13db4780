"""SuperGLUE data for MeZO's tasks: the local release files, else the hub's parquet copy.

Local files are the SuperGLUE release (``superglue/<Folder>/{train,val}.jsonl``); the hub
copy is ``aps/super_glue`` (script loaders are gone from ``datasets``; this repo holds
parquet). MeZO's templates read the hub's row layout, so each task converts a release
line into hub-layout rows (``from_local``) and one ``to_example`` serves both sources.
Each split comes from the first source that has it; a split missing from both fails with
a one-line UserError. No split ever stands in for another.
Usage: ``train, valid, source = load_rows("rte", data_dir, Source("RTE", "aps/super_glue", "rte", convert))``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Iterable

from zobench.api import Task, UserError
from zobench.tasks import Example, Splits
from zobench.tasks._data import hub_split, mezo_splits

SUPER_GLUE_HUB = "aps/super_glue"
# (our name, release file name, hub split name); the release calls validation "val".
SPLITS = (("train", "train.jsonl", "train"), ("valid", "val.jsonl", "validation"))


@dataclasses.dataclass(frozen=True)
class Source:
    folder: str  # under <data_dir>/<root>/
    hub_id: str
    hub_config: str | None
    from_local: Callable[[dict[str, Any]], Iterable[dict[str, Any]]]  # one release line → hub-layout rows
    root: str = "superglue"  # "." for tasks outside SuperGLUE (<data_dir>/<folder>/)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_rows(task: str, data_dir: Path | None, source: Source) -> tuple[list[dict], list[dict], str]:
    """(train rows, validation rows, where they came from), in the hub's layout and order."""
    folder = data_dir / source.root / source.folder if data_dir else None
    shown = f"{source.root}/{source.folder}" if source.root != "." else source.folder
    rows: dict[str, list[dict]] = {}
    origin: dict[str, str] = {}
    for split, file_name, hub_name in SPLITS:
        path = folder / file_name if folder else None
        if path is not None and path.is_file():
            try:
                rows[split] = [row for line in read_jsonl(path) for row in source.from_local(line)]
            except (KeyError, TypeError, ValueError) as exc:
                raise UserError(f"{task}: {path} is not a {source.folder} data file in the expected layout ({exc!r})") from None
            origin[split] = str(path)
        else:
            need = f"{task} needs {shown}/{file_name}"
            rows[split] = hub_split(source.hub_id, source.hub_config, hub_name, need)
            origin[split] = f"hf:{source.hub_id}" + (f"/{source.hub_config}" if source.hub_config else "") + f":{hub_name}"
    if all(not o.startswith("hf:") for o in origin.values()):
        where = str(folder)
    elif all(o.startswith("hf:") for o in origin.values()):
        where = origin["train"].rsplit(":", 1)[0]
    else:  # one split local, one from the hub: say which is which
        where = f"train {origin['train']}; valid {origin['valid']}"
    return rows["train"], rows["valid"], where


def label_index(value: Any, names: tuple[str, ...]) -> int:
    """A release label (a class name or a bool) as the hub's class index."""
    if isinstance(value, bool):
        return int(value)  # the hub's boolean classes are ["False", "True"]
    if isinstance(value, int):
        return value
    return names.index(value)


def premise_hypothesis_rows(labels: tuple[str, ...]):
    """A local-release reader for the NLI tasks (RTE, CB): one row per line, label as class index."""
    def from_local(line: dict) -> list[dict]:
        return [{"premise": line["premise"], "hypothesis": line["hypothesis"], "idx": line["idx"],
                 "label": label_index(line["label"], labels)}]

    return from_local


def mezo_prompt(text: str) -> str:
    """MeZO strips spaces around the encoded prompt, and leading newlines with them."""
    return text.lstrip().rstrip(" ")


class SuperGlueTask(Task):
    """MeZO's protocol over one SuperGLUE task; subclasses give the source and the template."""

    synthetic = False
    train_loss = "classification"
    default_sizes = {"train": 1000, "dev": 500, "test": 1000}
    name: str
    version: str
    description: str
    source: Source

    def to_example(self, row: dict[str, Any]) -> Example:
        raise NotImplementedError

    def load(self, data_dir: Path | None, sizes: dict[str, int], data_seed: int) -> Splits:
        train_rows, valid_rows, where = load_rows(self.name, data_dir, self.source)
        train, dev, test = mezo_splits(train_rows, valid_rows, sizes, data_seed, self.to_example)
        return Splits(train, dev, test, where)
