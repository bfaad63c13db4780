"""Encoder scoring for LM-BFF tasks: label words at the mask (masked LM) or a classifier head.

Masked LM (LM-BFF prompt-based fine-tuning, MeZO's RoBERTa runs): the template becomes
token ids with one mask; the encoder runs over the sequence, the LM head runs at the
mask position only (as LM-BFF's model does: the head over every position would be most
of the activation memory), and the scores are the logits of the label words. Training
loss: cross-entropy over those scores; prediction: the best label word.
Classifier head (the packaged MiniLM, which ships no MLM head): LM-BFF's "finetune" input,
``[CLS] sentence_0 [SEP] sentence_1 [SEP]``, scored by the sequence-classification logits.

The template language is LM-BFF's (src/dataset.py ``tokenize_multipart_input``), written
out here because no library implements it: parts between ``*`` are ``cls``, ``mask``,
``sep``/``sep+`` (a new segment after it), ``sent_i`` (sentence i), ``+sent_i`` (with a
space before), ``sent-_i`` (its last character dropped), ``sentl_i``/``+sentl_i`` (first
letter lower-cased); anything else is literal text with ``_`` for a space, a single
character taken as one token. Sentence limits cut a sentence's tokens; a sequence longer
than ``max_length`` loses its tail (LM-BFF's default).
``MaskedLMScoring`` and ``ClassifierScoring`` are the two as a cell's ``Scoring`` (zobench.api).
Usage: ``encoded = encode_masked(tokenizer, examples, 512)``; ``batch = collate_encoder(encoded, pad_id)``.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Sequence

import torch
import torch.nn.functional as F

from zobench.api import Task, UserError
from zobench.scoring.causal_lm import loss_precision, pad_id_of
from zobench.tasks import Example, MaskedPrompt


@dataclasses.dataclass(frozen=True)
class EncodedInput:
    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]
    mask_pos: int  # the mask's index (0 for classifier inputs, which have none)
    label: int


@dataclasses.dataclass
class EncoderBatch:
    input_ids: torch.Tensor  # (examples, length), right-padded
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    mask_pos: torch.Tensor  # (examples,)
    labels: torch.Tensor

    def to(self, device) -> "EncoderBatch":
        return EncoderBatch(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())


def _sentence_part(part: str) -> tuple[str, int] | None:
    """('+sentl', 1) for '+sentl_1'; None for parts that are not sentence references."""
    head, _, index = part.rpartition("_")
    if head in ("sent", "+sent", "sent-", "sentl", "+sentl") and index.isdigit():
        return head, int(index)
    return None


def template_ids(tokenizer, prompt: MaskedPrompt) -> tuple[list[int], list[int]]:
    """(token ids, segment ids) of an LM-BFF template filled with the prompt's sentences."""
    def enc(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids

    specials = {"cls": tokenizer.cls_token_id, "mask": tokenizer.mask_token_id,
                "sep": tokenizer.sep_token_id, "sep+": tokenizer.sep_token_id}
    ids: list[int] = []
    segments: list[int] = []
    segment = 0
    for part in prompt.template.split("*"):
        sentence = _sentence_part(part)
        if part in specials:
            if specials[part] is None:
                raise UserError(f"tokenizer {type(tokenizer).__name__} has no {part} token, which LM-BFF prompts need")
            tokens = [specials[part]]
        elif sentence is not None:
            kind, index = sentence
            text = prompt.sentences[index]
            if kind.endswith("-"):
                text = text[:-1]
            if "l" in kind:
                text = text[:1].lower() + text[1:]
            tokens = enc(" " + text if kind.startswith("+") else text)
            limit = prompt.first_sent_limit if index == 0 else prompt.other_sent_limit
            if limit is not None:
                tokens = tokens[:limit]
        else:
            text = part.replace("_", " ")
            tokens = [tokenizer.convert_tokens_to_ids(text)] if len(text) == 1 else enc(text)
        ids += tokens
        segments += [segment] * len(tokens)
        if part == "sep+":
            segment += 1
    return ids, segments


def label_word_ids(tokenizer, words: Sequence[str]) -> list[int]:
    """LM-BFF's label words: ' ' + word must be one token of the vocabulary."""
    ids = []
    for word in words:
        pieces = tokenizer.tokenize(" " + word)
        if len(pieces) != 1:
            raise UserError(f"label word {word!r} is {len(pieces)} tokens for {type(tokenizer).__name__}; "
                            f"LM-BFF needs one token per label word")
        ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
    return ids


def _check_prompt(example: Example) -> MaskedPrompt:
    if not isinstance(example.prompt, MaskedPrompt):
        raise UserError("encoder models (masked LM or classifier) run the LM-BFF tasks (lmbff-*); "
                        "this task's prompts are for causal LMs")
    return example.prompt


def encode_masked(tokenizer, examples: Sequence[Example], max_length: int) -> list[EncodedInput]:
    """Template ids cut to the task's (and the cell's) max length; the mask must survive the cut."""
    out = []
    for ex in examples:
        prompt = _check_prompt(ex)
        ids, segments = template_ids(tokenizer, prompt)
        limit = min(prompt.max_length, max_length)
        ids, segments = ids[:limit], segments[:limit]
        if tokenizer.mask_token_id not in ids:
            raise ValueError(f"the mask fell outside max_length {limit} for sentences {prompt.sentences!r}")
        out.append(EncodedInput(tuple(ids), tuple(segments), ids.index(tokenizer.mask_token_id), ex.label))
    return out


def encode_pairs(tokenizer, examples: Sequence[Example], max_length: int) -> list[EncodedInput]:
    """LM-BFF's "finetune" input for classifier heads: the sentences with the tokenizer's own specials."""
    out = []
    for ex in examples:
        prompt = _check_prompt(ex)
        encoded = tokenizer(*prompt.sentences[:2], truncation=True, max_length=min(prompt.max_length, max_length))
        segments = encoded.get("token_type_ids") or [0] * len(encoded.input_ids)
        out.append(EncodedInput(tuple(encoded.input_ids), tuple(segments), 0, ex.label))
    return out


def collate_encoder(examples: Sequence[EncodedInput], pad_id: int) -> EncoderBatch:
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    token_type_ids = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        input_ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        attention_mask[i, : len(e.input_ids)] = 1
        token_type_ids[i, : len(e.input_ids)] = torch.tensor(e.token_type_ids)
    return EncoderBatch(input_ids, attention_mask, token_type_ids,
                        torch.tensor([e.mask_pos for e in examples]), torch.tensor([e.label for e in examples]))


def _inputs(model, batch: EncoderBatch) -> dict[str, torch.Tensor]:
    kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if getattr(model.config, "type_vocab_size", 1) > 1:  # BERT uses segments; RoBERTa has one type
        kwargs["token_type_ids"] = batch.token_type_ids
    return kwargs


def mask_head(model) -> torch.nn.Module:
    """The MLM head that maps hidden states to vocabulary logits (RoBERTa: lm_head, BERT: cls)."""
    head = getattr(model, "lm_head", None) or getattr(model, "cls", None)
    if head is None:
        raise UserError(f"{type(model).__name__} has no masked-LM head (lm_head or cls)")
    return head


def masked_scores(model, batch: EncoderBatch, words: torch.Tensor) -> torch.Tensor:
    """Label-word logits at the mask, (examples, labels), in fp32 (see causal_lm.loss_precision)."""
    hidden = model.base_model(**_inputs(model, batch)).last_hidden_state
    at_mask = hidden[torch.arange(len(hidden), device=hidden.device), batch.mask_pos]
    return loss_precision(mask_head(model)(at_mask)[:, words])


def classifier_scores(model, batch: EncoderBatch) -> torch.Tensor:
    return loss_precision(model(**_inputs(model, batch)).logits)


@torch.no_grad()
def evaluate_encoder(score, model, examples: Sequence[EncodedInput], pad_id: int, device,
                     batch_size: int) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) with ``score(model, batch)``; batches of similar lengths."""
    if not examples:
        return float("nan"), float("nan")
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    was_training = model.training
    model.eval()
    correct, loss_sum = 0, 0.0
    for start in range(0, len(order), batch_size):
        batch = collate_encoder([examples[i] for i in order[start : start + batch_size]], pad_id).to(device)
        scores = score(model, batch)
        correct += int((scores.argmax(-1) == batch.labels).sum())
        loss_sum += float(F.cross_entropy(scores, batch.labels, reduction="sum"))
    model.train(was_training)
    return correct / len(examples), loss_sum / len(examples)


class EncoderScoring(abc.ABC):
    """LM-BFF's scoring as a cell's ``Scoring``: one score per label, cross-entropy over the scores to
    train and as the evaluation loss, the best label as the prediction (metric ``accuracy``)."""

    def __init__(self, task: Task, tokenizer, device):
        if task.train_loss != "classification":
            raise ValueError(f"task {task.name}: encoders train as classification over the labels, "
                             f"not {task.train_loss!r}")
        self.tokenizer, self.device, self.pad_id = tokenizer, device, pad_id_of(tokenizer)

    @abc.abstractmethod
    def encode(self, examples: Sequence[Example], max_length: int) -> list[EncodedInput]: ...

    @abc.abstractmethod
    def score(self, model, batch: EncoderBatch) -> torch.Tensor:
        """(examples, labels) scores."""

    def train_examples(self, encoded: list[EncodedInput]) -> list[EncodedInput]:
        return list(encoded)

    def collate(self, encoded: Sequence[EncodedInput]) -> EncoderBatch:
        return collate_encoder(encoded, self.pad_id)

    def loss(self, model, batch: EncoderBatch) -> torch.Tensor:
        return F.cross_entropy(self.score(model, batch), batch.labels)

    def evaluate(self, model, encoded: Sequence[EncodedInput], batch_size: int) -> dict[str, float]:
        accuracy, loss = evaluate_encoder(self.score, model, encoded, self.pad_id, self.device, batch_size)
        return {"accuracy": accuracy, "loss": loss}


class MaskedLMScoring(EncoderScoring):
    """LM-BFF prompt-based fine-tuning: the label words' logits at the template's mask."""

    def __init__(self, task: Task, tokenizer, device):
        super().__init__(task, tokenizer, device)
        # On the device once: a copy per forward would land inside the timed step.
        self.words = torch.tensor(label_word_ids(tokenizer, task.label_words), device=device)

    def encode(self, examples: Sequence[Example], max_length: int) -> list[EncodedInput]:
        return encode_masked(self.tokenizer, examples, max_length)

    def score(self, model, batch: EncoderBatch) -> torch.Tensor:
        return masked_scores(model, batch, self.words)


class ClassifierScoring(EncoderScoring):
    """LM-BFF's "finetune" baseline: a sequence-classification head over the sentences."""

    def encode(self, examples: Sequence[Example], max_length: int) -> list[EncodedInput]:
        return encode_pairs(self.tokenizer, examples, max_length)

    def score(self, model, batch: EncoderBatch) -> torch.Tensor:
        return classifier_scores(model, batch)
