"""Writes the SYNTHETIC task-data fixture in this folder, laid out like the staged benchmark data
(shared/data; see its MANIFEST.md) so every task's loader reads it as it reads the real files.

Every row is made up here from templates and small word lists: nothing is copied from any
dataset. The rows mean nothing (labels follow simple rules so each split holds every label);
they exist to run the loaders, templates, encoders and cells on a fresh clone.
Usage (from the repository root): ``python tests/data/make_fixture.py``; commit the result.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("Ada", "Bram", "Cleo", "Dov", "Edda", "Fenn", "Gus", "Hana")
THINGS = ("kite", "lamp", "boat", "drum", "vase", "sled", "harp", "cart")
PLACES = ("the mill", "the pier", "the barn", "the tower", "the garden", "the depot")
GOOD = ("bright", "warm", "lively", "clever", "gentle")
BAD = ("dull", "cold", "clumsy", "tired", "bleak")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_label_first_csv(path: Path, rows: list[tuple[int, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def review(rng: random.Random, label: int) -> str:
    words = GOOD if label else BAD
    return f"the {rng.choice(THINGS)} show at {rng.choice(PLACES)} felt {rng.choice(words)} and {rng.choice(words)} . "


def sst2(rng: random.Random) -> None:
    for split, n in (("train", 40), ("dev", 20)):
        rows = [[review(rng, i % 2), i % 2] for i in range(n)]
        write_tsv(HERE / "glue" / "SST-2" / f"{split}.tsv", ["sentence", "label"], rows)


def pair(rng: random.Random, i: int, entailed: bool) -> tuple[str, str]:
    name, thing, place = NAMES[i % len(NAMES)], rng.choice(THINGS), rng.choice(PLACES)
    premise = f"{name} carried a {thing} to {place} on day {i}."
    hypothesis = f"{name} carried a {thing}." if entailed else f"{name} never saw a {thing}."
    return premise, hypothesis


def nli(rng: random.Random, labels: tuple[str, ...], n: int) -> list[dict]:
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        premise, hypothesis = pair(rng, i, label == "entailment")
        rows.append({"premise": premise, "hypothesis": hypothesis, "label": label, "idx": i})
    return rows


def copa(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        name, thing = NAMES[i % len(NAMES)], THINGS[i % len(THINGS)]
        question = ("cause", "effect")[i % 2]
        good = f"The {thing} fell off the shelf." if question == "cause" else f"{name} picked up the {thing}."
        other = f"The {thing} was painted {rng.choice(GOOD)}."
        label = (i // 2) % 2
        choices = (good, other) if label == 0 else (other, good)
        rows.append({"premise": f"{name} found the {thing} on the floor.", "choice1": choices[0],
                     "choice2": choices[1], "question": question, "label": label, "idx": i})
    return rows


def wic(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        word = THINGS[i % len(THINGS)]
        s1 = f"The {word} stood near {rng.choice(PLACES)}."
        s2 = f"She drew a {word} in the sand." if i % 2 else f"The {word} was left at {rng.choice(PLACES)}."
        rows.append({"word": word, "sentence1": s1, "sentence2": s2, "start1": 4, "end1": 4 + len(word),
                     "start2": s2.index(word), "end2": s2.index(word) + len(word), "version": 1.1,
                     "label": i % 2 == 0, "idx": i})
    return rows


def wsc(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = NAMES[i % len(NAMES)], NAMES[(i + 3) % len(NAMES)]
        text = f"{a} gave {b} the {rng.choice(THINGS)} because he was leaving ."
        refers_to = a if i % 2 == 0 else b
        rows.append({"text": text, "target": {"span1_index": 0 if refers_to == a else 2, "span1_text": refers_to,
                                              "span2_index": 6, "span2_text": "he"},
                     "label": refers_to == a, "idx": i})
    return rows


def boolq(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        thing, place = THINGS[i % len(THINGS)], rng.choice(PLACES)
        passage = f"{thing.title()} -- The {thing} is kept at {place} and is {rng.choice(GOOD)}."
        question = f"is the {thing} kept at {place if i % 2 == 0 else 'the moon'}"
        rows.append({"question": question, "passage": passage, "idx": i, "label": i % 2 == 0})
    return rows


def multirc(rng: random.Random, paragraphs: int, start: int) -> list[dict]:
    rows = []
    for p in range(paragraphs):
        name, thing = NAMES[p % len(NAMES)], THINGS[p % len(THINGS)]
        text = f"{name} built a {thing} at {rng.choice(PLACES)}. It took {p + 2} days."
        questions = [{"question": f"What did {name} build?", "idx": 0,
                      "answers": [{"text": f"A {thing}", "idx": 0, "label": 1},
                                  {"text": "A bridge", "idx": 1, "label": 0},
                                  {"text": f"The {thing}", "idx": 2, "label": 1}]},
                     {"question": "How many days did it take?", "idx": 1,
                      "answers": [{"text": str(p + 2), "idx": 3, "label": 1},
                                  {"text": str(p + 9), "idx": 4, "label": 0},
                                  {"text": "None", "idx": 5, "label": 0}]}]
        rows.append({"idx": start + p, "version": 1.1, "passage": {"text": text, "questions": questions}})
    return rows


def record(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        a, b, thing = NAMES[i % len(NAMES)], NAMES[(i + 1) % len(NAMES)], THINGS[i % len(THINGS)]
        text = f"{a} met {b} near {thing.title()} Hall.@highlight\n{a} waved"
        spans = [(0, len(a) - 1), (len(a) + 5, len(a) + 4 + len(b))]
        hall = text.index(thing.title())
        spans.append((hall, hall + len(thing) + 4))  # "<Thing> Hall", inclusive end
        gold = a if i % 2 == 0 else b
        start = text.index(gold)
        rows.append({"idx": i, "passage": {"text": text, "entities": [{"start": s, "end": e} for s, e in spans]},
                     "qas": [{"idx": i, "query": f"@placeholder waved at {rng.choice(PLACES)}.",
                              "answers": [{"start": start, "end": start + len(gold) - 1, "text": gold}]}]})
    return rows


def squad(rng: random.Random, n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        name, thing, place = NAMES[i % len(NAMES)], THINGS[i % len(THINGS)], rng.choice(PLACES)
        context = f"{name} left the {thing} at {place} before noon."
        rows.append({"id": f"{prefix}{i}", "title": f"{name}_{thing}", "context": context,
                     "question": f"Where did {name} leave the {thing}?",
                     "answers": {"text": [place, place.removeprefix("the ")], "answer_start": [context.index(place)] * 2}})
    return rows


def drop(rng: random.Random, n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        name, a, b = NAMES[i % len(NAMES)], rng.randint(2, 9), rng.randint(2, 9)
        passage = f"{name} packed {a} kites in March and {b} kites in April."
        rows.append({"section_id": f"{prefix}s{i}", "query_id": f"{prefix}{i}", "passage": passage,
                     "question": f"How many kites did {name} pack in total?",
                     "answers_spans": {"spans": [str(a + b)], "types": ["number"]}})
    return rows


def superglue(rng: random.Random) -> None:
    root = HERE / "superglue"
    for folder, labels in (("RTE", ("entailment", "not_entailment")), ("CB", ("entailment", "contradiction", "neutral"))):
        write_jsonl(root / folder / "train.jsonl", nli(rng, labels, 48))
        write_jsonl(root / folder / "val.jsonl", nli(rng, labels, 16))
    for folder, make in (("COPA", copa), ("WiC", wic), ("WSC.fixed", wsc), ("ReCoRD", record)):
        write_jsonl(root / folder / "train.jsonl", make(rng, 48))
        write_jsonl(root / folder / "val.jsonl", make(rng, 16))
    write_jsonl(root / "BoolQ" / "val.jsonl", boolq(rng, 16))  # as staged: no BoolQ training split
    write_jsonl(root / "MultiRC" / "train.jsonl", multirc(rng, 8, 0))  # 8 paragraphs × 6 answers: 48 rows
    write_jsonl(root / "MultiRC" / "val.jsonl", multirc(rng, 3, 0))
    for folder, make in (("squad", squad), ("drop", drop)):
        write_jsonl(HERE / folder / "train.jsonl", make(rng, 40, "t"))
        write_jsonl(HERE / folder / "val.jsonl", make(rng, 16, "v"))


# LM-BFF k-shot folders: 4 examples per label in train and dev, 12 in test, for two of the five seeds.
KSHOT = HERE / "lm-bff" / "k-shot-1k-test"
SNLI_HEADER = ["index", "captionID", "pairID", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
               "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
MNLI_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
NLI_LABELS = ("contradiction", "entailment", "neutral")
TREC_QUESTIONS = ("What is a {t} ?", "Which {t} is the largest ?", "What does {t} stand for ?",
                  "Who made the first {t} ?", "Where is the oldest {t} ?", "How many {t}s are there ?")


def kshot_rows(rng: random.Random, n_labels: int, per_label: int) -> list[int]:
    labels = [label for _ in range(per_label) for label in range(n_labels)]
    rng.shuffle(labels)
    return labels


def kshot_split(rng: random.Random, task: str, labels: list[int], folder: Path, name: str) -> None:
    if task == "SST-2":
        write_tsv(folder / f"{name}.tsv", ["sentence", "label"], [[review(rng, y), y] for y in labels])
    elif task in ("sst-5", "trec"):
        if task == "sst-5":
            rows = [(y, f"a {('awful', 'weak', 'plain', 'fine', 'superb')[y]} film about a {rng.choice(THINGS)} .")
                    for y in labels]
        else:
            rows = [(y, TREC_QUESTIONS[y].format(t=rng.choice(THINGS))) for y in labels]
        write_label_first_csv(folder / f"{name}.csv", rows)
    else:
        rows = []
        for i, y in enumerate(labels):
            label = NLI_LABELS[y] if task != "RTE" else ("entailment", "not_entailment")[y]
            premise, hypothesis = pair(rng, i, label == "entailment")
            if task == "RTE":
                rows.append([i, premise, hypothesis, label])
            else:
                ids = [i, f"c{i}", f"p{i}"] if task == "SNLI" else [i, f"p{i}", f"p{i}e", "fiction"]
                parses = ["(x)"] * 4  # the parse columns, which the readers skip
                rows.append(ids + parses + [premise, hypothesis, label, label])
        header = {"RTE": ["index", "sentence1", "sentence2", "label"], "SNLI": SNLI_HEADER, "MNLI": MNLI_HEADER}[task]
        file = {"MNLI": {"dev": "dev_matched", "test": "test_matched"}}.get(task, {}).get(name, name)
        write_tsv(folder / f"{file}.tsv", header, rows)


def lm_bff(rng: random.Random) -> None:
    n_labels = {"SST-2": 2, "sst-5": 5, "SNLI": 3, "MNLI": 3, "RTE": 2, "trec": 6}
    for task, n in n_labels.items():
        for seed in (13, 21):
            folder = KSHOT / task / f"16-{seed}"
            for split in ("train", "dev"):
                kshot_split(rng, task, kshot_rows(rng, n, 4), folder, split)
            kshot_split(random.Random(task), task, [i % n for i in range(12)], folder, "test")  # the same for every seed


def main() -> None:
    rng = random.Random(20)
    sst2(rng)
    superglue(rng)
    lm_bff(rng)


if __name__ == "__main__":
    main()
