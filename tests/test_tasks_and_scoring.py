"""Tasks follow MeZO's protocol; scoring is the same batched or one sequence at a time."""

from __future__ import annotations

import pytest
import torch

from zobench.scoring.causal_lm import accuracy, collate, encode, evaluate, option_scores
from zobench.tasks import get_task, task_names


def test_sst2_follows_mezo_sampling(data_dir):
    """1000 train + 500 dev drawn from train with the data seed; test = the 872 validation rows."""
    task = get_task("sst2")
    splits = task.load(data_dir, task.default_sizes, 0)
    assert splits.sizes == {"train": 1000, "dev": 500, "test": 872}
    assert all(ex.prompt.endswith(" It was") and ex.options == ("terrible", "great") for ex in splits.train[:50])
    # MeZO: np.random.seed(0); perm = np.random.permutation(len(train)); train+dev = perm[:1500], dev = the last 500.
    import csv

    import numpy as np

    with open(data_dir / "glue" / "SST-2" / "train.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    np.random.seed(0)
    perm = np.random.permutation(len(rows))
    assert [e.prompt for e in splits.train] == [rows[i]["sentence"].strip() + " It was" for i in perm[:1000]]
    assert [e.label for e in splits.dev] == [int(rows[i]["label"]) for i in perm[1000:1500]]
    again = task.load(data_dir, task.default_sizes, 0)
    assert again.train == splits.train and again.test == splits.test
    other = task.load(data_dir, task.default_sizes, 1)
    assert other.train != splits.train


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


def test_batched_and_single_scoring_agree(tiny):
    """Left padding and logits_to_keep do not change scores or predictions."""
    model, tokenizer = tiny
    sst_like = get_task("synthetic").load(None, {"train": 2, "dev": 2, "test": 12}, 3).test
    encoded = encode(tokenizer, sst_like, 256)
    with torch.no_grad():
        batched = option_scores(model, collate(encoded, 0))
        single = torch.cat([option_scores(model, collate([e], 0)) for e in encoded])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
    assert torch.equal(batched.argmax(-1), single.argmax(-1))
    assert accuracy(model, encoded, 0, "cpu", 4) == accuracy(model, encoded, 0, "cpu", 1000)


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


@pytest.mark.parametrize("name", ["cb", "copa"])
def test_batched_and_single_scoring_agree_on_superglue_tasks(tiny, data_dir, name):
    """Three options (CB) and options of different lengths after a space (COPA): batched scoring,
    one example at a time and evaluate at any batch size give the same scores and predictions."""
    model, tokenizer = tiny
    task = get_task(name)
    examples = task.load(data_dir, task.default_sizes, 0).test[:6]
    encoded = encode(tokenizer, examples, 512)
    with torch.no_grad():
        batched = option_scores(model, collate(encoded, 0))
        single = torch.cat([option_scores(model, collate([e], 0)) for e in encoded])
    assert batched.shape == (6, len(examples[0].options))
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
    assert torch.equal(batched.argmax(-1), single.argmax(-1))
    loss = task.train_loss
    small, large = (evaluate(model, encoded, 0, "cpu", n, loss) for n in (3, 1000))
    assert small[0] == large[0] == float((batched.argmax(-1) == torch.tensor([e.label for e in examples])).float().mean())
    assert small[1] == pytest.approx(large[1], rel=1e-5)


def test_examples_with_different_option_counts_evaluate_together(tiny, data_dir):
    """ReCoRD-like lists (2 and 3 options mixed) evaluate the same at any batch size as one by one."""
    model, tokenizer = tiny
    mixed = []
    for name in ("cb", "copa"):
        task = get_task(name)
        mixed += task.load(data_dir, task.default_sizes, 0).test[:3]
    encoded = encode(tokenizer, mixed, 128)
    one_by_one = [evaluate(model, [e], 0, "cpu", 1) for e in encoded]
    accuracy_each = sum(a for a, _ in one_by_one) / len(encoded)
    loss_each = sum(loss for _, loss in one_by_one) / len(encoded)
    for batch_sequences in (2, 5, 1000):
        acc, loss = evaluate(model, encoded, 0, "cpu", batch_sequences)
        assert acc == pytest.approx(accuracy_each) and loss == pytest.approx(loss_each, rel=1e-5)
