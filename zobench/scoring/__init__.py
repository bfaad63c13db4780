"""Which scoring a cell uses: the model's head and the task's kind pick one of three.

``causal-lm``: MeZO's option log-likelihoods (zobench.scoring) for the SuperGLUE-style tasks.
``masked-lm``: LM-BFF label words at the mask; ``classifier``: a sequence-classification
head (zobench.encoder_scoring), both for the LM-BFF k-shot tasks. Every scoring offers the
same four steps, so the training loop does not care which it has.
Usage: ``scoring = scoring_for(model_info["head"], task, tokenizer, device)``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import torch

from zobench.scoring import encoder as enc
from zobench.scoring import causal_lm as scoring
from zobench.api import UserError
from zobench.tasks import train_loss_of

HEADS = ("causal-lm", "masked-lm", "classifier")


@dataclasses.dataclass(frozen=True)
class Scoring:
    encode: Callable[[Any, list, int], list]  # (tokenizer, examples, max_length) → encoded examples
    train_examples: Callable[[list], list]  # what a training batch holds of the encoded examples
    collate: Callable[[list, int], Any]  # (encoded examples, pad id) → a batch with .to() and .n_tokens
    loss: Callable[[torch.nn.Module, Any], torch.Tensor]
    evaluate: Callable[..., tuple[float, float]]  # (model, encoded, pad_id, device, batch) → (accuracy, loss)


def _cross_entropy(score, model, batch) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(score(model, batch), batch.labels)


def scoring_for(head: str, task: Any, tokenizer, device="cpu") -> Scoring:
    encoder_task = getattr(task, "model_kind", "decoder") == "encoder"
    if head == "causal-lm":
        if encoder_task:
            raise UserError(f"task {task.name} is an LM-BFF encoder task; run it with a masked-LM or "
                            f"classifier model (e.g. FacebookAI/roberta-large, minilm-l6)")
        train_loss = train_loss_of(task)
        return Scoring(scoring.encode, functools.partial(scoring.train_batch_examples, train_loss=train_loss),
                       scoring.collate, scoring.TRAIN_LOSS_FUNCTIONS[train_loss],
                       functools.partial(scoring.evaluate, train_loss=train_loss))
    if head not in HEADS[1:]:
        raise ValueError(f"unknown model head {head!r}; valid: {', '.join(HEADS)}")
    if not encoder_task:
        raise UserError(f"a {head} model runs only the LM-BFF k-shot tasks (lmbff-*), not {task.name}")
    if head == "masked-lm":
        # On the device once: a copy per forward would land inside the timed step.
        words = torch.tensor(enc.label_word_ids(tokenizer, task.spec.words), device=device)
        score = functools.partial(enc.masked_scores, words=words)
        encode = enc.encode_masked
    else:
        score, encode = enc.classifier_scores, enc.encode_pairs
    return Scoring(encode, list, enc.collate_encoder, functools.partial(_cross_entropy, score),
                   functools.partial(enc.evaluate_encoder, score))
