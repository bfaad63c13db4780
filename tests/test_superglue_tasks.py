"""SuperGLUE tasks: MeZO's exact prompts and options, its split sampling, and where data comes from."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from zobench.api import UserError
from zobench.tasks import get_task
from zobench.tasks._superglue import read_jsonl

FOLDERS = {"rte": "RTE", "cb": "CB", "boolq": "BoolQ", "wsc": "WSC.fixed", "wic": "WiC", "multirc": "MultiRC",
           "copa": "COPA"}


def first_val_example(data_dir, name):
    """The task's Example for the first line of the local validation file."""
    module = importlib.import_module(f"zobench.tasks.{name}")
    with open(data_dir / "superglue" / FOLDERS[name] / "val.jsonl", encoding="utf-8") as f:
        line = json.loads(f.readline())
    return module.TASK.to_example(module.from_local(line)[0])


# The exact text MeZO's templates (large_models/templates.py) produce for the first
# validation example of each task, written out by hand from the release files.
PINNED = {
    "rte": ('Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to '
            'the Christopher Reeve Foundation.\nDoes this mean that "Christopher Reeve had an accident." is true? '
            'Yes or No?\n', ("Yes", "No"), 1, ""),
    "cb": ("Suppose Valence the void-brain, Valence the virtuous valet. Why couldn't the figger choose his own "
           "portion of titanic anatomy to shaft? Did he think he was helping? Can we infer that \"Valence was "
           "helping\"? Yes, No, or Maybe?\n", ("Yes", "No", "Maybe"), 1, ""),
    "wsc": ("Bernard , who had not told the government official that he was less than 21 when he filed for a "
            "homestead claim, did not consider that he had done anything dishonest. Still, anyone who knew that he "
            "was 19 years old could take his claim away from him .\nIn the previous sentence, does the pronoun "
            "\"him\" refer to anyone? Yes or No?\n", ("No", "Yes"), 0, ""),
    "wic": ('Does the word "class" have the same meaning in these two sentences? Yes, No?\nAn emerging professional '
            'class.\nApologizing for losing your temper, even though you were badly provoked, showed real class.\n',
            ("No", "Yes"), 0, ""),
    "copa": ("The man turned on the faucet so", ("the toilet filled with water.", "water flowed from the spout."), 1,
             " "),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_prompt_and_options_are_mezos(staged_data, name):
    """Prompt, options, gold index and separator equal MeZO's template output for a real example."""
    ex = first_val_example(staged_data, name)
    assert (ex.prompt, ex.options, ex.label, ex.sep) == PINNED[name]


def test_long_passage_prompts_are_mezos(staged_data):
    """BoolQ drops SuperGLUE's '<title> -- ' (MeZO reads google/boolq) and capitalises the question;
    MultiRC is one example per answer with MeZO's question/answer lines."""
    boolq = first_val_example(staged_data, "boolq")
    assert boolq.prompt.startswith("All biomass goes through at least some of these steps:")
    assert boolq.prompt.endswith("uses much less petroleum than producing gasoline. "
                                 "Does ethanol take more energy make that produces?\n")
    assert len(boolq.prompt) == 1368 + len(" Does ethanol take more energy make that produces?\n")
    assert (boolq.options, boolq.label, boolq.sep) == (("Yes", "No"), 1, "")
    multirc = first_val_example(staged_data, "multirc")
    assert multirc.prompt.startswith("What causes a change in motion? The application of a force.")
    assert multirc.prompt.endswith("This requires only a very small force. \nQuestion: Would the mass of a baseball "
                                   "affect how much force you have to use to pick it up?\nI found this answer \"No\". "
                                   "Is that correct? Yes or No?\n")
    assert (multirc.options, multirc.label, multirc.sep) == (("No", "Yes"), 0, "")


def test_record_template_on_a_release_line():
    """ReCoRD (no data staged, so a constructed release-format line): @highlight becomes '- ', options are
    the query with each distinct entity (sorted, inclusive ends), gold = first answer, others also count."""
    record = importlib.import_module("zobench.tasks.record")
    text = "Ann met Bob in Paris.@highlight\nBob likes Paris"
    line = {"idx": 7, "passage": {"text": text, "entities": [
        {"start": 0, "end": 2}, {"start": 8, "end": 10}, {"start": 15, "end": 19}, {"start": 42, "end": 46}]},
        "qas": [{"idx": 3, "query": "@placeholder went to France.",
                 "answers": [{"start": 15, "end": 19, "text": "Paris"}, {"start": 0, "end": 2, "text": "Ann"}]}]}
    ex = record.TASK.to_example(record.from_local(line)[0])
    assert ex.prompt == "Ann met Bob in Paris.- Bob likes Paris\n-"
    assert ex.options == ("Ann went to France.", "Bob went to France.", "Paris went to France.")
    assert (ex.label, ex.also_correct, ex.correct, ex.sep) == (0, (2,), (0, 2), " ")
    assert record.TASK.train_loss == "option-lm"


# Effective sizes of MeZO's 1000 train / 500 dev (100 for CB and COPA) / 1000 test on the
# official split sizes (MANIFEST.md): small train splits shrink train, not dev.
EFFECTIVE = {"rte": (1000, 500, 277), "cb": (150, 100, 56), "wsc": (54, 500, 104), "wic": (1000, 500, 638),
             "multirc": (1000, 500, 1000), "copa": (300, 100, 100)}


@pytest.mark.parametrize("name", sorted(EFFECTIVE))
def test_effective_split_sizes_follow_mezo(staged_data, name):
    task = get_task(name)
    splits = task.load(staged_data, task.default_sizes, 0)
    assert tuple(splits.sizes.values()) == EFFECTIVE[name]
    assert splits.source == str(staged_data / "superglue" / FOLDERS[name])


def test_sampling_is_mezos_permutation(data_dir):
    """train+dev = the first train+dev of np.random.permutation(train split) under the data seed, dev last;
    test = the first `test` of the permuted validation split (MeZO's sample_subset)."""
    task = get_task("wic")
    rows = read_jsonl(data_dir / "superglue" / "WiC" / "train.jsonl")
    valid = read_jsonl(data_dir / "superglue" / "WiC" / "val.jsonl")
    splits = task.load(data_dir, {"train": 20, "dev": 10, "test": 12}, 3)
    np.random.seed(3)
    perm = np.random.permutation(len(rows))
    assert [e.prompt.split("\n")[1] for e in splits.train] == [rows[i]["sentence1"] for i in perm[:20]]
    assert [e.prompt.split("\n")[1] for e in splits.dev] == [rows[i]["sentence1"] for i in perm[20:30]]
    np.random.seed(3)
    vperm = np.random.permutation(len(valid))
    assert [e.label for e in splits.test] == [int(valid[i]["label"]) for i in vperm[:12]]


def test_multirc_is_flattened_in_the_hubs_order(data_dir):
    """One row per answer option, in paragraph → question → answer order."""
    from zobench.tasks._superglue import load_rows

    multirc = importlib.import_module("zobench.tasks.multirc")
    train, valid, _ = load_rows("multirc", data_dir, multirc.TASK.source)
    lines = read_jsonl(data_dir / "superglue" / "MultiRC" / "val.jsonl")
    nested = [(line["idx"], q["idx"], a["idx"], a["label"]) for line in lines
              for q in line["passage"]["questions"] for a in q["answers"]]
    assert [(r["idx"]["paragraph"], r["idx"]["question"], r["idx"]["answer"], r["label"]) for r in valid] == nested
    assert len(train) == sum(len(q["answers"]) for line in read_jsonl(data_dir / "superglue" / "MultiRC" / "train.jsonl")
                             for q in line["passage"]["questions"])


def test_multirc_counts_on_the_staged_data(staged_data):
    """The official release flattens to 27243 training and 4848 validation answer rows."""
    from zobench.tasks._superglue import load_rows

    multirc = importlib.import_module("zobench.tasks.multirc")
    train, valid, _ = load_rows("multirc", staged_data, multirc.TASK.source)
    assert (len(train), len(valid)) == (27243, 4848)


def test_missing_split_without_hub_is_one_line_user_error(data_dir, monkeypatch):
    """BoolQ's train split is not staged: offline, loading fails naming the file and ZOBENCH_DATA_DIR,
    and never falls back to the local validation split."""
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    task = get_task("boolq")
    with pytest.raises(UserError) as err:
        task.load(data_dir, task.default_sizes, 0)
    message = str(err.value)
    assert "\n" not in message
    assert "superglue/BoolQ/train.jsonl" in message and "ZOBENCH_DATA_DIR" in message and "google/boolq" in message


def test_every_classification_task_trains_as_classification_and_copa_record_on_the_option():
    """MeZO's mezo.sh: --train_as_classification except for COPA and ReCoRD (and the generation tasks)."""
    losses = {name: get_task(name).train_loss for name in ("rte", "cb", "boolq", "wsc", "wic", "multirc",
                                                           "copa", "record", "sst2")}
    assert {n for n, loss in losses.items() if loss == "option-lm"} == {"copa", "record"}


# Every task that reads files in the staged layout, with the folder it reads.
FILE_TASKS = {"sst2": "glue/SST-2", "rte": "superglue/RTE", "cb": "superglue/CB", "copa": "superglue/COPA",
              "wic": "superglue/WiC", "wsc": "superglue/WSC.fixed", "multirc": "superglue/MultiRC",
              "record": "superglue/ReCoRD", "squad": "squad", "drop": "drop"}


@pytest.mark.parametrize("name", sorted(FILE_TASKS))
def test_every_task_loads_from_the_data_dir(data_dir, name):
    """Each task reads its files (no hub): the requested sizes, its own options, a gold label among them,
    answers for generation tasks; the same seed gives the same splits."""
    folder = data_dir / FILE_TASKS[name]
    if not folder.is_dir():
        pytest.skip(f"{FILE_TASKS[name]} is not staged in {data_dir}")
    task = get_task(name)
    sizes = {"train": 8, "dev": 4, "test": 4}
    splits = task.load(data_dir, sizes, 0)
    assert splits.sizes == sizes and splits.source == str(folder)
    for example in splits.train + splits.dev + splits.test:
        assert isinstance(example.prompt, str) and example.prompt and 0 <= example.label < len(example.options)
        assert set(example.correct) <= set(range(len(example.options)))
        if task.metric == "f1":
            assert example.answers and example.options == (f"{example.answers[0]}\n",)
    assert task.load(data_dir, sizes, 0) == splits


def test_boolq_release_lines_lose_their_title(data_dir):
    """BoolQ's staged split is validation only: its release lines read as google/boolq rows (title gone)."""
    boolq = importlib.import_module("zobench.tasks.boolq")
    lines = read_jsonl(data_dir / "superglue" / "BoolQ" / "val.jsonl")
    for line in lines[:8]:
        (row,) = boolq.from_local(line)
        assert row["passage"] == line["passage"].split(" -- ", 1)[1] and row["answer"] is bool(line["label"])
        ex = boolq.TASK.to_example(row)
        assert ex.prompt.startswith(row["passage"]) and ex.prompt.endswith("?\n") and ex.label == (0 if row["answer"] else 1)
