"""The scoring seam: one Scoring per (model head, task metric), the Task protocol's defaults, and
evaluate's metrics dict, which the worker merges without knowing the metric."""

from __future__ import annotations

import pytest
import torch

from zobench.api import Scoring, Task, UserError
from zobench.scoring import MODEL_KINDS, SCORINGS, scoring_class, scoring_for
from zobench.scoring.causal_lm import OptionScoring, collate, encode, evaluate, option_lm_loss, pad_id_of
from zobench.scoring.encoder import ClassifierScoring, MaskedLMScoring
from zobench.scoring.generation import GenerationScoring, evaluate_generation, prompt_ids
from zobench.tasks import Example, Splits, get_task, task_names


class Bare(Task):
    """A task that declares only what every task must: the rest comes from the protocol."""

    name = "bare"
    version = "1"
    synthetic = True
    description = "a task with no optional attributes"
    default_sizes = {"train": 2, "dev": 2, "test": 2}

    def load(self, data_dir, sizes, data_seed) -> Splits:
        examples = [Example("The sky is", ("blue", "green"), 0), Example("Grass is", ("blue", "green"), 1)]
        return Splits(examples, examples, examples, "embedded")


def test_a_task_that_declares_nothing_optional_takes_the_protocols_defaults():
    """The defaults live in zobench.api.Task only: a causal-LM classification task scored by accuracy."""
    task = Bare()
    assert (task.train_loss, task.metric, task.model_kind) == ("classification", "accuracy", "decoder")
    assert (task.label_words, task.num_labels, task.sequence_length) == ((), None, None)
    assert scoring_class("causal-lm", task) is OptionScoring


@pytest.mark.parametrize("name", task_names())
def test_every_task_is_a_task_with_a_scoring_for_its_model_kind(name):
    """Each registered task subclasses Task, and every model head of its kind has a scoring for its metric."""
    task = get_task(name)
    assert Task in type(task).__mro__  # declared, so the defaults are the protocol's
    heads = [h for h, kind in MODEL_KINDS.items() if kind == task.model_kind]
    assert heads and all(scoring_class(h, task) is SCORINGS[h, task.metric] for h in heads)
    for head in set(MODEL_KINDS) - set(heads):  # the other kind of model is a one-line user error
        with pytest.raises(UserError):
            scoring_class(head, task)


def test_the_metric_and_the_head_pick_the_scoring():
    assert scoring_class("causal-lm", get_task("sst2")) is OptionScoring
    assert scoring_class("causal-lm", get_task("squad")) is GenerationScoring
    assert scoring_class("masked-lm", get_task("lmbff-sst2-k16")) is MaskedLMScoring
    assert scoring_class("classifier", get_task("lmbff-sst2-k16")) is ClassifierScoring


def test_an_undeclared_metric_loss_or_head_is_a_clear_error(tiny):
    """A task's metric with no scoring, an unknown train_loss or model head each name what is valid."""
    _, tokenizer = tiny
    bleu, lossy = Bare(), Bare()
    bleu.metric, lossy.train_loss = "bleu", "contrastive"
    with pytest.raises(ValueError, match="no scoring for metric 'bleu' on a causal-lm model; valid: accuracy, f1"):
        scoring_class("causal-lm", bleu)
    with pytest.raises(ValueError, match="unknown train_loss 'contrastive'; valid: classification, option-lm"):
        scoring_for("causal-lm", lossy, tokenizer)
    with pytest.raises(ValueError, match="unknown model head 'seq2seq'"):
        scoring_class("seq2seq", Bare())


def test_option_scoring_is_the_causal_lm_functions_bound_to_the_tokenizer(tiny):
    """The Scoring's five steps give what the module's functions give with the tokenizer's pad id."""
    model, tokenizer = tiny
    task = get_task("synthetic")
    examples = task.load(None, {"train": 6, "dev": 2, "test": 2}, 0).train
    scoring = scoring_for("causal-lm", task, tokenizer)
    assert isinstance(scoring, Scoring)
    encoded = scoring.encode(examples, 64)
    assert encoded == encode(tokenizer, examples, 64)
    batch = scoring.collate(scoring.train_examples(encoded))
    assert torch.equal(batch.input_ids, collate(encoded, pad_id_of(tokenizer)).input_ids)
    accuracy, loss = evaluate(model, encoded, pad_id_of(tokenizer), "cpu", 4)
    assert scoring.evaluate(model, encoded, 4) == {"accuracy": accuracy, "loss": loss}
    with torch.no_grad():
        assert float(scoring.loss(model, batch)) == pytest.approx(loss, rel=1e-5)  # the whole set: the same CE


def test_generation_scoring_reports_f1_exact_match_and_the_answers_lm_loss(tiny):
    """F1 and exact match of the greedy answers to the prompts of the raw examples, and the option-lm
    loss on the first answer: what the worker once assembled from two calls, now one dict."""
    model, tokenizer = tiny
    task = get_task("squad")
    row = {"id": "q", "title": "Normandy", "context": "The Normans were in France.",
           "answers": {"text": ["France", "in France"], "answer_start": [20, 17]}}
    examples = [task.to_example({**row, "question": f"Question {i}?"}) for i in range(3)]
    scoring = scoring_for("causal-lm", task, tokenizer)
    assert isinstance(scoring, Scoring)
    encoded = scoring.encode(examples, 128)
    assert [e.prompt for e in encoded] == [tuple(p) for p in prompt_ids(tokenizer, examples, 128)]
    result = scoring.evaluate(model, encoded, 2)
    assert list(result) == ["f1", "exact_match", "loss"]
    f1, em = evaluate_generation(model, tokenizer, prompt_ids(tokenizer, examples, 128),
                                 [ex.answers for ex in examples], "cpu", 2)
    assert (result["f1"], result["exact_match"]) == (f1, em)
    gold = scoring.train_examples(encoded)
    with torch.no_grad():
        assert result["loss"] == pytest.approx(float(option_lm_loss(model, scoring.collate(gold))), rel=1e-5)


def test_an_empty_split_gives_nan_for_every_metric(tiny):
    model, tokenizer = tiny
    for task in (get_task("synthetic"), get_task("squad")):
        result = scoring_for("causal-lm", task, tokenizer).evaluate(model, [], 4)
        assert result and all(v != v for v in result.values())
