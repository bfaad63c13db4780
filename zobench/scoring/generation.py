"""Generation tasks (SQuAD, DROP) as MeZO evaluates them: greedy decoding, SQuAD-normalised F1 and EM.

MeZO (large_models/run.py) generates greedily (``num_beams=1``), at most 50 new tokens,
stopping at a newline or EOS, and scores the stripped text with the SQuAD v1.1 metric:
the answers are normalised (lower case, punctuation and the articles a/an/the removed,
whitespace collapsed), token F1 and exact match are taken against every gold answer and
the best counts. DROP is scored with the same F1, not DROP's own numeric metric, as in
MeZO's Table 1. Training and the dev loss are the teacher-forced LM loss on the first gold
answer (causal_lm.option_lm_loss); ``GenerationScoring`` (a cell's ``Scoring``, metric ``f1``)
adds the generated answers' F1 and exact match to it.

The metric is written out here (a few lines) rather than taken from ``evaluate``, which
fetches metric scripts from the hub at run time and cannot run offline.
Usage: ``f1, em = evaluate_generation(model, tokenizer, prompt_ids(tokenizer, examples, 256),
[ex.answers for ex in examples], device, 16)``.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import string
from typing import Sequence

import torch

from zobench.api import Task
from zobench.scoring.causal_lm import EncodedExample, OptionScoring, pad_id_of, special_prefix
from zobench.tasks import Example

MAX_NEW_TOKENS = 50  # MeZO's default max_new_tokens
STOP_TEXT = "\n"  # MeZO's eos_token for generation tasks
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The SQuAD v1.1 normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, golds: Sequence[str]) -> float:
    return max(token_f1(prediction, g) for g in golds)


def best_exact_match(prediction: str, golds: Sequence[str]) -> float:
    return max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds)


def stop_token_ids(tokenizer) -> list[int]:
    """The newline's token and EOS, MeZO's two stop tokens."""
    ids = [tokenizer(STOP_TEXT, add_special_tokens=False).input_ids[-1]]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids


def prompt_ids(tokenizer, examples: Sequence[Example], max_length: int) -> list[list[int]]:
    """Special prefix + prompt, left-truncated so the prompt and the answer fit in ``max_length``."""
    prefix = special_prefix(tokenizer)
    budget = max(1, max_length - MAX_NEW_TOKENS - len(prefix))
    return [prefix + tokenizer(ex.prompt, add_special_tokens=False).input_ids[-budget:] for ex in examples]


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: Sequence[Sequence[int]], device, batch_size: int) -> list[str]:
    """Greedy continuations of token-id prompts, batched (left-padded, similar lengths together),
    cut at the first newline and stripped, in the prompts' order."""
    pad_id = pad_id_of(tokenizer)
    stops = stop_token_ids(tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            input_ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            attention_mask[row, width - len(prompts[i]) :] = 1
        out = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                             max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1,
                             eos_token_id=stops, pad_token_id=pad_id)
        for row, i in enumerate(chunk):
            text = tokenizer.decode(out[row, width:], skip_special_tokens=True)
            answers[i] = text.split(STOP_TEXT, 1)[0].strip()
    model.train(was_training)
    return answers


def evaluate_generation(model, tokenizer, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[str]],
                        device, batch_size: int) -> tuple[float, float]:
    """(mean F1, mean exact match) of greedy answers to token-id prompts against each one's gold answers."""
    if not prompts:
        return float("nan"), float("nan")
    predictions = generate_answers(model, tokenizer, prompts, device, batch_size)
    f1 = sum(best_f1(p, golds) for p, golds in zip(predictions, answers)) / len(prompts)
    em = sum(best_exact_match(p, golds) for p, golds in zip(predictions, answers)) / len(prompts)
    return f1, em


@dataclasses.dataclass(frozen=True)
class GenerationExample:
    answer: EncodedExample  # prompt + first gold answer: the teacher-forced LM loss (training, dev loss)
    prompt: tuple[int, ...]  # special prefix + prompt, left-truncated so the new tokens fit max_length
    answers: tuple[str, ...]  # every gold answer, for F1 and exact match


class GenerationScoring:
    """A generation task as a cell's ``Scoring``: trained and its loss taken as MeZO's option-lm
    (``OptionScoring`` on the first answer), scored by F1 (metric ``f1``) and exact match."""

    def __init__(self, task: Task, tokenizer, device):
        self.options = OptionScoring(task, tokenizer, device)
        self.tokenizer, self.device = tokenizer, device

    def encode(self, examples: Sequence[Example], max_length: int) -> list[GenerationExample]:
        answers = self.options.encode(examples, max_length)
        prompts = prompt_ids(self.tokenizer, examples, max_length)
        return [GenerationExample(a, tuple(p), ex.answers) for a, p, ex in zip(answers, prompts, examples)]

    def train_examples(self, encoded: list[GenerationExample]) -> list[EncodedExample]:
        return self.options.train_examples([e.answer for e in encoded])

    def collate(self, encoded: Sequence[EncodedExample]):
        return self.options.collate(encoded)

    def loss(self, model, batch) -> torch.Tensor:
        return self.options.loss(model, batch)

    def evaluate(self, model, encoded: Sequence[GenerationExample], batch_size: int) -> dict[str, float]:
        loss = self.options.evaluate(model, [e.answer for e in encoded], batch_size)["loss"]
        f1, em = evaluate_generation(model, self.tokenizer, [e.prompt for e in encoded],
                                     [e.answers for e in encoded], self.device, batch_size)
        return {"f1": f1, "exact_match": em, "loss": loss}
