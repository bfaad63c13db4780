"""Tasks follow MeZO's protocol; scoring is the same batched or one sequence at a time."""

from __future__ import annotations

import pytest
import torch

from zobench.scoring.causal_lm import accuracy, collate, encode, evaluate, option_scores
from zobench.tasks import get_task, task_names


def test_sst2_follows_mezo_sampling(data_dir):
    """train + dev drawn from the train file with the data seed (dev the last), test from the dev file."""
    task = get_task("sst2")
    sizes = {"train": 20, "dev": 10, "test": 15}
    splits = task.load(data_dir, sizes, 0)
    assert all(ex.prompt.endswith(" It was") and ex.options == ("terrible", "great") for ex in splits.train)
    # MeZO: np.random.seed(0); perm = np.random.permutation(len(train)); train+dev = perm[:30], dev = the last 10.
    import csv

    import numpy as np

    with open(data_dir / "glue" / "SST-2" / "train.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    with open(data_dir / "glue" / "SST-2" / "dev.tsv", newline="") as f:
        n_valid = len(list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)))
    assert splits.sizes == {"train": 20, "dev": 10, "test": min(15, n_valid)}
    np.random.seed(0)
    perm = np.random.permutation(len(rows))
    assert [e.prompt for e in splits.train] == [rows[i]["sentence"].strip() + " It was" for i in perm[:20]]
    assert [e.label for e in splits.dev] == [int(rows[i]["label"]) for i in perm[20:30]]
    again = task.load(data_dir, sizes, 0)
    assert again.train == splits.train and again.test == splits.test
    other = task.load(data_dir, sizes, 1)
    assert other.train != splits.train


def test_sst2_default_sizes_on_the_staged_data(staged_data):
    """MeZO's 1000 train + 500 dev; test = all 872 validation rows (fewer than 1000)."""
    task = get_task("sst2")
    assert task.load(staged_data, task.default_sizes, 0).sizes == {"train": 1000, "dev": 500, "test": 872}


def test_synthetic_is_deterministic_balanced_and_disjoint():
    """Same seed, same splits; each split has as many of each label; no sentence is in two splits."""
    task = get_task("synthetic")
    a = task.load(None, task.default_sizes, 0)
    assert a == task.load(None, task.default_sizes, 0) and task.synthetic
    for split in (a.train, a.dev, a.test):
        labels = [e.label for e in split]
        assert labels.count(0) == labels.count(1)
    prompts = [{e.prompt for e in s} for s in (a.train, a.dev, a.test)]
    assert not (prompts[0] & prompts[1] or prompts[0] & prompts[2] or prompts[1] & prompts[2])


def test_every_task_declares_a_version():
    """Records carry the task version, so series restart when a task's semantics change."""
    for name in task_names():
        assert isinstance(get_task(name).version, str)


def test_option_tokens_are_the_scored_ones(tiny):
    """The option length is the number of tokens the option adds after the prompt."""
    _, tokenizer = tiny
    task = get_task("synthetic").load(None, {"train": 2, "dev": 2, "test": 2}, 0)
    enc = encode(tokenizer, task.train, 256)[0]
    # ByT5 is byte-level: " left" is 5 tokens and " right" 6.
    assert enc.option_lengths == (5, 6)
    assert bytes(i - 3 for i in enc.sequences[1][-6:]) == b" right"


def test_scoring_forwards_build_no_kv_cache(tiny, tiny_batch):
    """Scoring never decodes, so its forwards return no KV cache: a cache holds every layer's K and V until the
    forward ends and would count towards the floor's and every ZO method's peak memory."""
    model, _ = tiny
    outputs = []
    handle = model.register_forward_hook(lambda module, args, output: outputs.append(output))
    try:
        with torch.no_grad():
            option_scores(model, tiny_batch)
    finally:
        handle.remove()
    assert len(outputs) == 1 and outputs[0].past_key_values is None


def scoring_examples(data_dir) -> list:
    """Two-option synthetic prompts, three-option CB and COPA's options of different lengths after a space."""
    synthetic = get_task("synthetic").load(None, {"train": 2, "dev": 2, "test": 4}, 3).test
    sizes = {"train": 4, "dev": 4, "test": 4}
    return synthetic + get_task("cb").load(data_dir, sizes, 0).test[:3] + get_task("copa").load(data_dir, sizes, 0).test[:3]


def test_batched_and_single_scoring_agree(tiny, data_dir):
    """Left padding, logits_to_keep and mixing option counts in a batch change no score, prediction or
    loss: batched option scores equal one sequence at a time, and evaluate at any batch size equals the
    mean of one example at a time (option-lm: its token-mean loss is the same at any batch size)."""
    model, tokenizer = tiny
    examples = scoring_examples(data_dir)
    encoded = encode(tokenizer, examples, 512)
    hits = 0  # examples whose best single-sequence score is a correct option
    with torch.no_grad():
        for n_options in {len(e.options) for e in examples}:  # option_scores batches one option count
            same = [e for e in encoded if len(e.sequences) == n_options]
            batched = option_scores(model, collate(same, 0))
            single = torch.cat([option_scores(model, collate([e], 0)) for e in same])
            assert batched.shape == (len(same), n_options)
            torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
            assert torch.equal(batched.argmax(-1), single.argmax(-1))
            hits += sum(int(best) in e.correct for best, e in zip(single.argmax(-1), same))
    one_by_one = [evaluate(model, [e], 0, "cpu", 1) for e in encoded]
    accuracy_each = sum(a for a, _ in one_by_one) / len(encoded)
    loss_each = sum(loss for _, loss in one_by_one) / len(encoded)  # classification: a mean over examples
    for batch_sequences in (2, 5, 1000):
        acc, loss = evaluate(model, encoded, 0, "cpu", batch_sequences)
        assert acc == pytest.approx(accuracy_each) and loss == pytest.approx(loss_each, rel=1e-5)
    # option-lm's loss is a mean over all gold-option tokens: the same at any batch size.
    lm = [evaluate(model, encoded, 0, "cpu", n, "option-lm") for n in (1, 2, 5, 1000)]
    assert all(acc == pytest.approx(accuracy_each) and loss == pytest.approx(lm[0][1], rel=1e-5) for acc, loss in lm)
    assert accuracy_each == pytest.approx(hits / len(encoded))
    assert accuracy(model, encoded, 0, "cpu", 4) == accuracy(model, encoded, 0, "cpu", 1000) == pytest.approx(accuracy_each)
