"""Which scoring a cell uses: the model's head and the task's metric pick one (the ``SCORINGS`` table).

``causal-lm``: MeZO's option log-likelihoods (scoring.causal_lm) for the SuperGLUE-style
tasks, metric ``accuracy``; greedy generation scored by F1 and exact match
(scoring.generation) for SQuAD and DROP, metric ``f1``. ``masked-lm``: LM-BFF label words at
the mask; ``classifier``: a sequence-classification head (scoring.encoder), both for the
LM-BFF k-shot tasks. Every scoring is a ``zobench.api.Scoring``: the same five steps, so
the training loop does not care which it has, nor which metrics it reports.
Adding a metric or a head is a scoring class in this package, one row in ``SCORINGS``, and
the task that declares it.
Usage: ``scoring = scoring_for(model_info["head"], task, tokenizer, device)``.
"""

from __future__ import annotations

from typing import Any, Callable

from zobench.api import Scoring, Task, UserError
from zobench.scoring.causal_lm import OptionScoring
from zobench.scoring.encoder import ClassifierScoring, MaskedLMScoring
from zobench.scoring.generation import GenerationScoring

# The task kind each model head runs: causal LMs MeZO's prompts, encoders LM-BFF's templates.
MODEL_KINDS = {"causal-lm": "decoder", "masked-lm": "encoder", "classifier": "encoder"}
HEADS = tuple(MODEL_KINDS)
# (model head, task metric) → the scoring, built as ``cls(task, tokenizer, device)``.
SCORINGS: dict[tuple[str, str], Callable[[Task, Any, Any], Scoring]] = {
    ("causal-lm", "accuracy"): OptionScoring,
    ("causal-lm", "f1"): GenerationScoring,
    ("masked-lm", "accuracy"): MaskedLMScoring,
    ("classifier", "accuracy"): ClassifierScoring,
}
# Said when a task's kind is not the model's, by the task's kind.
WRONG_MODEL = {
    "encoder": "task {task} is an LM-BFF encoder task; run it with a masked-LM or classifier model "
               "(e.g. FacebookAI/roberta-large, minilm-l6)",
    "decoder": "a {head} model runs only the LM-BFF k-shot tasks (lmbff-*), not {task}",
}


def scoring_class(head: str, task: Task) -> Callable[[Task, Any, Any], Scoring]:
    """The scoring for a model head and a task; a one-line error for a model that cannot run the task."""
    if head not in MODEL_KINDS:
        raise ValueError(f"unknown model head {head!r}; valid: {', '.join(HEADS)}")
    if task.model_kind not in WRONG_MODEL:
        raise ValueError(f"task {task.name}: unknown model_kind {task.model_kind!r}; valid: {', '.join(WRONG_MODEL)}")
    if task.model_kind != MODEL_KINDS[head]:
        raise UserError(WRONG_MODEL[task.model_kind].format(task=task.name, head=head))
    if (head, task.metric) not in SCORINGS:
        served = sorted({metric for h, metric in SCORINGS if h == head})
        raise ValueError(f"task {task.name}: no scoring for metric {task.metric!r} on a {head} model; "
                         f"valid: {', '.join(served)}")
    return SCORINGS[head, task.metric]


def scoring_for(head: str, task: Task, tokenizer, device="cpu") -> Scoring:
    return scoring_class(head, task)(task, tokenizer, device)
