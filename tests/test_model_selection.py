"""Model selection on dev only: the best-on-dev checkpoint is chosen from dev figures and tested once."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from zobench.run.checkpoint import BestOnDev
from tests.test_worker_and_trackers import run_in_process, smoke_cell


def test_best_on_dev_restores_the_saved_tensors_and_ignores_worse_or_non_finite_scores():
    """offer() keeps only improvements (lower loss); restore() puts the saved values back in place."""
    weight = torch.nn.Parameter(torch.zeros(3))
    best = BestOnDev("dev_loss", [weight, weight])  # a tensor listed twice is saved once
    assert best.offer(1, 0.5, 0.9)
    with torch.no_grad():
        weight.fill_(1.0)
    assert best.offer(2, 0.9, 0.7)
    with torch.no_grad():
        weight.fill_(2.0)
    assert not best.offer(3, 1.0, 0.8)  # better accuracy, worse loss: not selected on dev_loss
    assert not best.offer(4, 1.0, math.nan)
    assert best.step == 2 and best.dev_loss == 0.7
    best.restore()
    assert torch.equal(weight.detach(), torch.ones(3))
    best.close()


def test_selection_on_dev_accuracy_and_the_final_checkpoint_is_never_saved():
    """dev_accuracy selects the highest accuracy; a final checkpoint that wins needs no copy."""
    weight = torch.nn.Parameter(torch.zeros(2))
    best = BestOnDev("dev_accuracy", [weight])
    best.offer(1, 0.6, 5.0)
    assert best.offer(2, 0.7, 9.0, final=True)
    with pytest.raises(RuntimeError, match="never saved"):
        best.restore()
    best.close()
    with pytest.raises(ValueError, match="valid: dev_loss, dev_accuracy"):
        BestOnDev("test_accuracy", [weight])


def test_selected_checkpoint_scores_like_a_run_stopped_at_that_step():
    """The best-on-dev step is the dev-accuracy argmax over the training evaluations (not step 0),
    and its test score equals the final test score of the same cell stopped at that step: the
    restored tensors are that step's, and test played no part in choosing it."""
    # A constant lr: under linear decay a run stopped at step k decays to 0 by k, unlike the longer
    # run at its step k. No clipping, so lr 0.1 overshoots and an earlier checkpoint wins.
    args = {**smoke_cell("ft").args, "lr": 0.1, "lr_schedule": "constant", "max_grad_norm": None}
    cell = smoke_cell("ft", steps=8, eval_every=1, select_on="dev_accuracy",
                      split_sizes={"train": 16, "dev": 16, "test": 64}, args=args)
    record, _ = run_in_process(cell)
    assert record["status"] == "ok", record.get("traceback")
    m = record["metrics"]
    candidates = [point for point in record["series"]["dev"] if point[0] > 0]
    top = max(accuracy for _, accuracy, _ in candidates)
    assert m["best_step"] == min(step for step, accuracy, _ in candidates if accuracy == top)
    assert m["best_dev_accuracy"] == top
    assert m["best_step"] < cell.steps, "this setting is chosen so an earlier checkpoint wins; the test needs it"
    assert m["best_accuracy"] != m["accuracy"]
    shorter, _ = run_in_process(dataclasses.replace(cell, steps=m["best_step"]))
    assert shorter["metrics"]["accuracy"] == m["best_accuracy"]


def test_without_periodic_evaluation_the_final_checkpoint_is_the_selection():
    """With eval_every 0 the only candidate is the final model: its test score is reported twice."""
    record, _ = run_in_process(smoke_cell("mezo"))
    m = record["metrics"]
    assert m["best_step"] == 3 and m["best_accuracy"] == m["accuracy"]
