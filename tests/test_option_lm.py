"""option-lm (MeZO without train_as_classification): the LM loss on the gold option's tokens only."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from zobench.scoring.causal_lm import collate, encode, evaluate, option_lm_loss, option_scores, train_batch_examples
from zobench.run.suite import Overrides, expand, load_suite
from zobench.tasks import Example, get_task
from zobench.run.worker import execute_cell


def copa_examples(data_dir, n=6):
    return get_task("copa").load(data_dir, {"train": n, "dev": 4, "test": 4}, 0).train


def test_training_batches_hold_the_gold_option_only(tiny, data_dir):
    """option-lm feeds one sequence per example (the gold one); classification feeds every option."""
    _, tokenizer = tiny
    encoded = encode(tokenizer, copa_examples(data_dir), 256)
    gold = train_batch_examples(encoded, "option-lm")
    assert [g.sequences for g in gold] == [(e.sequences[e.label],) for e in encoded]
    assert [g.option_lengths for g in gold] == [(e.option_lengths[e.label],) for e in encoded]
    assert train_batch_examples(encoded, "classification") == encoded


def test_option_lm_loss_is_the_token_mean_nll_of_gold_options(tiny, data_dir):
    """Equals the mean over all gold-option tokens of -log p(token), each sequence run alone and unpadded."""
    model, tokenizer = tiny
    gold = train_batch_examples(encode(tokenizer, copa_examples(data_dir), 256), "option-lm")
    with torch.no_grad():
        loss = option_lm_loss(model, collate(gold, 0))
        nll, tokens = 0.0, 0
        for g in gold:
            ids = torch.tensor([g.sequences[0]])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            n = g.option_lengths[0]
            targets = ids[0, -n:]
            nll -= float(logprobs[-n - 1 : -1].gather(-1, targets.unsqueeze(-1)).sum())
            tokens += n
    assert float(loss) == pytest.approx(nll / tokens, rel=1e-5)


def test_dev_loss_of_option_lm_tasks_is_their_training_loss(tiny, data_dir):
    """evaluate reports the same option-lm loss a training batch of the same examples gives."""
    model, tokenizer = tiny
    encoded = encode(tokenizer, copa_examples(data_dir), 256)
    with torch.no_grad():
        train = float(option_lm_loss(model, collate(train_batch_examples(encoded, "option-lm"), 0)))
    _, dev = evaluate(model, encoded, 0, "cpu", 4, "option-lm")
    assert dev == pytest.approx(train, rel=1e-5)


def test_any_gold_option_counts_as_correct(tiny):
    """ReCoRD lists several gold entities: predicting any of them is correct, as MeZO's metric."""
    model, tokenizer = tiny
    ex = Example("The capital of France is", ("Paris", "Rome", "Berlin"), 0)
    (encoded,) = encode(tokenizer, [ex], 64)
    with torch.no_grad():
        scores = option_scores(model, collate([encoded], 0))[0]
    best = int(scores.argmax())
    other = (best + 1) % 3
    only_other = encode(tokenizer, [dataclasses.replace(ex, label=other)], 64)
    with_best = encode(tokenizer, [dataclasses.replace(ex, label=other, also_correct=(best,))], 64)
    assert evaluate(model, only_other, 0, "cpu", 8)[0] == 0.0
    assert evaluate(model, with_best, 0, "cpu", 8)[0] == 1.0


def test_a_copa_cell_trains_on_the_option_loss(data_dir):
    """The worker picks the task's loss: a COPA cell records option-lm and MeZO's split sizes."""
    cell = expand(load_suite("smoke"), Overrides(methods=["ft"], tasks=["copa"]))[0]
    cell = dataclasses.replace(cell, split_sizes={"train": 8, "dev": 4, "test": 4}, steps=2)
    record = execute_cell({"cell": cell.to_dict(), "data_dir": str(data_dir)}, lambda kind, data: None)
    assert record["status"] == "ok", record.get("traceback")
    assert record["data"]["train_loss"] == "option-lm"
    assert record["data"]["split_sizes"] == {"train": 8, "dev": 4, "test": 4}
    assert len(record["series"]["loss"]) == 2 and all(loss > 0 for loss in record["series"]["loss"])
