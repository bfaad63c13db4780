"""Generation tasks (SQuAD, DROP): MeZO's prompts, SQuAD-normalised F1/EM, batched greedy decoding."""

from __future__ import annotations

import dataclasses
import json

import pytest

from zobench.api import UserError
from zobench.scoring.generation import best_exact_match, best_f1, generate_answers, normalize_answer, prompt_ids, token_f1
from zobench.run.suite import Overrides, expand, load_suite
from zobench.tasks import get_task
from zobench.run.worker import execute_cell

SQUAD_ROW = {"id": "q1", "title": "Normandy", "context": "The Normans were in France.",
             "question": " In what country is Normandy located? ",
             "answers": {"text": ["France", "France.", "in France"], "answer_start": [20, 20, 17]}}
DROP_ROW = {"section_id": "s1", "query_id": "d1", "passage": "The Bears scored 7 points.",
            "question": "How many points did the Bears score?", "answers_spans": {"spans": ["7"], "types": ["number"]}}


def test_squad_normalisation_and_token_f1_by_hand():
    """Lower case, punctuation and articles go; F1 is token overlap; the best gold answer counts."""
    assert normalize_answer("  The  Cat, sat!  ") == "cat sat"
    # "cat sat" vs "cat sat on mat": 2 common tokens, precision 1, recall 1/2 → F1 2/3.
    assert token_f1("The cat sat.", "a cat sat on the mat") == pytest.approx(2 / 3)
    assert token_f1("dog", "cat") == 0.0
    assert best_f1("cat sat", ["dog", "The cat sat"]) == 1.0
    assert best_exact_match("The cat sat", ["cat sat."]) == 1.0
    assert best_exact_match("cat", ["cat sat"]) == 0.0


def test_squad_and_drop_examples_use_mezos_templates():
    """The prompt ends at 'Answer:'; the trained option is ' <first answer>\\n'; every answer is gold."""
    squad = get_task("squad").to_example(SQUAD_ROW)
    assert squad.prompt == ("Title: Normandy\nContext: The Normans were in France.\n"
                            "Question: In what country is Normandy located?\nAnswer:")
    assert f"{squad.prompt}{squad.sep}{squad.options[0]}".endswith("Answer: France\n")
    assert squad.answers == ("France", "France.", "in France") and squad.label == 0
    drop = get_task("drop").to_example(DROP_ROW)
    assert drop.prompt == "Passage: The Bears scored 7 points.\nQuestion: How many points did the Bears score?\nAnswer:"
    assert drop.options == ("7\n",) and drop.answers == ("7",)
    for name in ("squad", "drop"):
        assert get_task(name).metric == "f1" and get_task(name).train_loss == "option-lm"


def write_rows(folder, rows_by_split):
    folder.mkdir(parents=True)
    for split, rows in rows_by_split.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def squad_rows(n: int, prefix: str) -> list[dict]:
    return [{**SQUAD_ROW, "id": f"{prefix}{i}", "question": f"Question number {i}?"} for i in range(n)]


def test_local_hub_layout_files_come_first(tmp_path):
    """<data_dir>/squad/{train,val}.jsonl with the hub's rows loads without the hub, sampled as MeZO."""
    write_rows(tmp_path / "squad", {"train": squad_rows(12, "t"), "val": squad_rows(5, "v")})
    splits = get_task("squad").load(tmp_path, {"train": 8, "dev": 3, "test": 4}, 0)
    assert splits.sizes == {"train": 8, "dev": 3, "test": 4}
    assert splits.source == str(tmp_path / "squad")


@pytest.mark.parametrize("name, hub_id, folder", [("squad", "rajpurkar/squad", "squad"), ("drop", "ucinlp/drop", "drop")])
def test_offline_without_local_files_is_one_line_user_error(tmp_path, monkeypatch, name, hub_id, folder):
    """No local copy and no hub: one line naming the local file, the setting and the hub id."""
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError) as err:
        get_task(name).load(tmp_path, {"train": 8, "dev": 2, "test": 2}, 0)
    message = str(err.value)
    assert "\n" not in message and f"{folder}/train.jsonl" in message and hub_id in message
    assert "ZOBENCH_DATA_DIR" in message


def test_batched_generation_matches_one_prompt_at_a_time(tiny):
    """Left padding and length-sorted batches give the same greedy answers as one prompt at a time."""
    model, tokenizer = tiny
    examples = [get_task("squad").to_example({**SQUAD_ROW, "question": "Why" + "?" * k}) for k in range(5)]
    examples += [get_task("drop").to_example(DROP_ROW)]
    prompts = prompt_ids(tokenizer, examples, 512)
    batched = generate_answers(model, tokenizer, prompts, "cpu", batch_size=4)
    single = [generate_answers(model, tokenizer, [p], "cpu", batch_size=1)[0] for p in prompts]
    assert batched == single
    assert all("\n" not in a for a in batched)


def test_prompts_are_left_truncated_to_leave_room_for_the_answer(tiny):
    """A long context loses its start, never the question, and prompt + 50 new tokens fit max_length."""
    _, tokenizer = tiny
    long_row = {**SQUAD_ROW, "context": "word " * 500}
    ids = prompt_ids(tokenizer, [get_task("squad").to_example(long_row)], 256)[0]
    assert len(ids) == 256 - 50
    assert tokenizer.decode(ids).endswith("located?\nAnswer:")


def test_a_squad_cell_records_f1_and_exact_match(tmp_path):
    """End to end on the tiny model: the record's score is F1 (metric f1) with exact match beside it."""
    write_rows(tmp_path / "squad", {"train": squad_rows(12, "t"), "val": squad_rows(5, "v")})
    cell = expand(load_suite("smoke"), Overrides(methods=["mezo"]))[0]
    cell = dataclasses.replace(cell, task="squad", split_sizes={"train": 8, "dev": 2, "test": 3}, steps=2)
    record = execute_cell({"cell": cell.to_dict(), "data_dir": str(tmp_path)}, lambda *_: None)
    assert record["status"] == "ok", record.get("traceback")
    assert record["data"]["metric"] == "f1" and record["data"]["train_loss"] == "option-lm"
    m = record["metrics"]
    for key in ("accuracy", "step0_accuracy", "best_accuracy", "exact_match", "step0_exact_match", "best_exact_match"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["exact_match"] <= m["accuracy"]  # an exact match is an F1 of 1
    # The schema is the one every task shares: the F1 under accuracy, no test loss, no f1 key.
    assert not {f"{prefix}{name}" for prefix in ("step0_", "", "best_") for name in ("f1", "loss")} & set(m)
