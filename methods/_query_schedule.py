"""AdaZeta's adaptive query schedule: Q = min(max(⌊α·e^β⌋, 1), Q_max), e the epoch index.

e = ⌊step / ⌈N/B⌉⌋ (shared/reference/adazeta-and-loretta.md §4.3): a power law in the
epoch index, updated once per epoch, not an exponential in the step. Variants:
- ``code`` (as the paper's experiments ran, large_models/run.py): α = 0.85 and β
  overwritten as ln(20/α)/ln(E) with E = max_steps/(N/B), so the curve would reach 20 at
  the last epoch; then capped at Q_max = 15.
- ``paper``: α = 0.85, β = 0.45, Q_max = 20.
- ``fixed``: a constant Q.
The harness's sampler keeps an epoch's short last batch (drop_last false, as the
reference's HF loader), so its data epoch and the schedule's are both ⌈N/B⌉ steps, with B
the effective batch size (the whole set when B exceeds N).
Usage: ``make_schedule("code", plan).queries(step)``.
"""

from __future__ import annotations

import dataclasses
import math

from zobench.api import TrainingPlan

ALPHA = 0.85
CODE_TARGET, CODE_Q_MAX = 20, 15
PAPER_BETA, PAPER_Q_MAX = 0.45, 20
VARIANTS = ("code", "paper", "fixed")


@dataclasses.dataclass(frozen=True)
class QuerySchedule:
    variant: str
    alpha: float
    beta: float
    q_max: int
    steps_per_epoch: int
    fixed_queries: int = 1

    def queries(self, step: int) -> int:
        if self.variant == "fixed":
            return self.fixed_queries
        epoch = step // self.steps_per_epoch
        return min(max(int(self.alpha * epoch ** self.beta), 1), self.q_max)

    def describe(self) -> str:
        if self.variant == "fixed":
            return f"fixed-q{self.fixed_queries}"
        return f"{self.variant}(alpha={self.alpha},beta={self.beta:.4f},qmax={self.q_max},epoch={self.steps_per_epoch}steps)"


def code_beta(plan: TrainingPlan) -> float:
    """β = ln(20/α)/ln(E), E = max_steps/(N/B) epochs (a float, as in run.py)."""
    epochs = plan.total_steps / (plan.train_size / plan.batch_size)
    # With at most one epoch e stays 0 and Q stays 1 whatever β is; avoid ln(1) = 0.
    return math.log(CODE_TARGET / ALPHA) / math.log(epochs) if epochs > 1 else 0.0


def make_schedule(variant: str, plan: TrainingPlan, q_max: int = 0, fixed_queries: int = 1) -> QuerySchedule:
    """The schedule for a variant; ``q_max`` 0 keeps the variant's own cap."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown query schedule '{variant}'; valid: {', '.join(VARIANTS)}")
    if fixed_queries < 1:
        raise ValueError("queries must be >= 1")
    if variant == "code":
        return QuerySchedule("code", ALPHA, code_beta(plan), q_max or CODE_Q_MAX, plan.steps_per_epoch)
    if variant == "paper":
        return QuerySchedule("paper", ALPHA, PAPER_BETA, q_max or PAPER_Q_MAX, plan.steps_per_epoch)
    return QuerySchedule("fixed", ALPHA, 0.0, fixed_queries, plan.steps_per_epoch, fixed_queries)
