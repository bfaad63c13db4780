"""The contract every method in methods/ must keep; new methods are picked up automatically."""

from __future__ import annotations

import math

import pytest
import torch

from zobench.api import DriftProbed, Method, TrainingPlan
from zobench.models import load_model
from zobench.registry import make_args, method_module, method_names
from zobench.scoring.causal_lm import classification_loss


def run_steps(name: str, batch, steps: int = 3, seed: int = 0):
    """Build the method and step it; ``before`` maps each tensor (by identity) to its value before
    training: the pre-build value for the model's own tensors, the post-build value for adapters."""
    model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
    original = {id(p): p.detach().clone() for p in model.parameters()}
    method = method_module(name).build(model, make_args(name, {}), seed)
    before = {id(p): original.get(id(p), p.detach().clone()) for p in model.parameters()}
    losses = [method.step(lambda: classification_loss(model, batch)) for _ in range(steps)]
    return model, method, before, losses


@pytest.mark.parametrize("name", method_names())
def test_losses_are_finite(name, tiny_batch):
    """Every method's logged loss is a finite float on a healthy model."""
    _, _, _, losses = run_steps(name, tiny_batch)
    assert all(isinstance(x, float) and math.isfinite(x) for x in losses)


@pytest.mark.parametrize("name", method_names())
def test_only_trainable_tensors_change(name, tiny_batch):
    """A method changes exactly the tensors it declares in ``params`` (and at least one of them if any)."""
    model, method, before, _ = run_steps(name, tiny_batch)
    declared = {id(p) for p in method.params}
    changed_declared = 0
    for n, p in model.named_parameters():
        if id(p) in declared:
            changed_declared += not torch.equal(p, before[id(p)])
        else:
            assert torch.equal(p, before[id(p)]), f"{name} changed {n}, which it does not declare"
    if method.params:
        assert changed_declared > 0, f"{name} declares params but changed none"


@pytest.mark.parametrize("name", method_names())
def test_same_seed_same_losses(name, tiny_batch):
    """Two runs with the same seed give bit-identical losses; the global RNG state does not matter."""
    _, _, _, first = run_steps(name, tiny_batch, seed=7)
    torch.manual_seed(12345)  # a method must not depend on the global RNG
    _, _, _, second = run_steps(name, tiny_batch, seed=7)
    assert first == second


@pytest.mark.parametrize("name", method_names())
def test_method_declares_its_interface(name):
    """Each method file exports VERSION, Args and build, which takes the run's plan (Method API v2); what it
    builds is a Method (params, forwards_last_step >= 1, variant, details), and a DriftProbed one's probe
    returns the restore-drift figures the record keeps, with a positive limit to judge them by."""
    module = method_module(name)
    assert isinstance(module.VERSION, str) and callable(module.build)
    model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
    method = module.build(model, module.Args(), 0, plan=TrainingPlan(train_size=16, batch_size=4, total_steps=3))
    assert isinstance(method, Method)
    assert method.forwards_last_step >= 1 and isinstance(method.variant, str) and isinstance(method.details, dict)
    if isinstance(method, DriftProbed):
        drift = method.drift_probe()
        assert {"restore_drift_max", "restore_drift_rms"} <= set(drift) and method.drift_limit() > 0
