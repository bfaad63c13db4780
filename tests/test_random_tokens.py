"""random-tokens-<N>: every sequence is exactly N tokens for any tokenizer, and records say the inputs are random."""

from __future__ import annotations

import dataclasses

import pytest
from transformers import ByT5Tokenizer, PreTrainedTokenizerFast

from zobench.api import UserError
from zobench.scoring.causal_lm import collate, encode, special_prefix
from zobench.run.suite import expand, load_suite, parse_suite
from zobench.tasks import RandomTokens, get_task, task_names
from zobench.tasks.random_tokens import LENGTHS

SIZES = {"train": 6, "dev": 3, "test": 3}


def bpe_with_bos() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer that prepends BOS, as Llama's does, trained here on a few sentences."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the movie was great", "it was terrible and long", "a great long film"] * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")


TOKENIZERS = {"byt5": ByT5Tokenizer, "bpe-with-bos": bpe_with_bos}


def test_one_module_exports_a_task_per_length():
    """The TASKS list of one module registers every length under its own name, each marked synthetic."""
    names = [f"random-tokens-{n}" for n in LENGTHS]
    assert set(names) <= set(task_names())
    for n, name in zip(LENGTHS, names):
        task = get_task(name)
        assert task.name == name and task.sequence_length == n and task.synthetic
        assert "accuracy meaningless" in task.description


@pytest.mark.parametrize("which", TOKENIZERS)
@pytest.mark.parametrize("length", [64, 512])
def test_every_sequence_is_exactly_the_stated_length(which, length):
    """Prefix + prompt + option is exactly N ids for a byte tokenizer and a BPE one with BOS; the option is one
    token, ids are ordinary (non-special) vocabulary, and a collated batch is N wide with no padding."""
    tokenizer = TOKENIZERS[which]()
    splits = get_task(f"random-tokens-{length}").load(None, SIZES, 0)
    encoded = encode(tokenizer, splits.train, max_length=length)
    prefix = special_prefix(tokenizer)
    assert (prefix != []) == (which == "bpe-with-bos")
    special = set(tokenizer.all_special_ids)
    for ex in encoded:
        assert [len(s) for s in ex.sequences] == [length, length] and ex.option_lengths == (1, 1)
        for seq in ex.sequences:
            assert list(seq[: len(prefix)]) == prefix
            assert not special & set(seq[len(prefix):]) and max(seq) < len(tokenizer)
        assert ex.sequences[0][:-1] == ex.sequences[1][:-1], "the options share their prompt"
    batch = collate(encoded, tokenizer.pad_token_id)
    assert tuple(batch.input_ids.shape) == (2 * SIZES["train"], length)
    assert batch.n_tokens == 2 * SIZES["train"] * length


def test_draws_are_deterministic_and_differ_between_examples_and_splits():
    """Same data seed, same ids; examples, splits and data seeds differ; labels use both options."""
    tokenizer = ByT5Tokenizer()
    task = get_task("random-tokens-64")
    a, b = task.load(None, SIZES, 0), task.load(None, SIZES, 0)
    assert encode(tokenizer, a.train, 64) == encode(tokenizer, b.train, 64)
    prompts = [e.sequences[0] for s in (a.train, a.dev, a.test) for e in encode(tokenizer, s, 64)]
    assert len(set(prompts)) == len(prompts)
    assert encode(tokenizer, task.load(None, SIZES, 1).train, 64) != encode(tokenizer, a.train, 64)
    labels = [e.label for e in task.load(None, {"train": 64, "dev": 1, "test": 1}, 0).train]
    assert set(labels) == {0, 1}


def test_too_short_max_length_fails_instead_of_truncating():
    """Left-truncation would silently run shorter sequences: encode refuses, and a suite fails before any cell."""
    example = get_task("random-tokens-128").load(None, SIZES, 0).train[0]
    with pytest.raises(ValueError, match="exceeds max_length"):
        encode(ByT5Tokenizer(), [example], max_length=127)
    with pytest.raises(ValueError, match="no room"):
        encode(bpe_with_bos(), [dataclasses.replace(example, prompt=RandomTokens(2, 0))], max_length=64)
    text = "name: x\nmodels: ['random:tiny-llama']\ntasks: [random-tokens-512]\nmax_length: 500\nmethods: {floor: {}}\n"
    with pytest.raises(UserError, match="needs max_length >= 512"):
        expand(parse_suite(text, "inline"))


def test_a_cell_on_random_tokens_records_what_its_inputs_were():
    """A real cell (tiny Llama, CPU) runs on random-tokens-64: the record marks the data synthetic, says the
    ids are random, and the tokens it timed per step are batch × options × 64 × forwards."""
    from zobench.run.worker import execute_cell

    cell = expand(load_suite("smoke"))[0]
    cell = dataclasses.replace(cell, task="random-tokens-64", split_sizes={"train": 8, "dev": 2, "test": 2},
                               steps=3, warmup_steps=1, max_length=64)
    record = execute_cell({"cell": cell.to_dict(), "data_dir": None}, lambda kind, data: None)
    assert record["status"] == "ok", record.get("traceback")
    assert record["data"]["synthetic"] is True
    assert "random token ids" in record["data"]["source"] and "accuracy meaningless" in record["data"]["source"]
    m = record["metrics"]
    per_step = cell.batch_size * 2 * 64 * m["forwards_per_step"]
    assert m["tokens_per_s"] * m["step_time_mean_s"] == pytest.approx(per_step, rel=1e-9)
