"""AdaZeta and LoRETTA: the query schedule, the reference's parameter counts, and what a step touches."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from zobench.api import TrainingPlan
from zobench.inspection import inspect_method
from zobench.methods import adazeta, loretta_adp
from zobench.methods._query_schedule import make_schedule
from zobench.models import load_model
from zobench.registry import make_args
from zobench.scoring.causal_lm import classification_loss


@pytest.mark.parametrize("train, beta, epochs, reach, mean_q, forwards", [
    (1000, 0.622, 159, (4, 18, 53, 101), 10.98, 219_612),
    (150, 0.453, 1000, (7, 50, 231, 566), 12.06, 241_240),  # CB: 250 − 100 dev
    (300, 0.503, 527, (6, 34, 135, 302), 11.82, 236_464),  # COPA
])
def test_code_schedule_reproduces_the_reference_table(train, beta, epochs, reach, mean_q, forwards):
    """Batch 16, 10,000 steps, `code` variant: β, epochs, the epochs where Q reaches 2/5/10/15, mean Q, forwards."""
    plan = TrainingPlan(train_size=train, batch_size=16, total_steps=10_000)
    schedule = make_schedule("code", plan)
    qs = [schedule.queries(step) for step in range(plan.total_steps)]
    assert round(schedule.beta, 3) == beta
    assert (plan.total_steps - 1) // plan.steps_per_epoch + 1 == epochs
    assert tuple(next(s // plan.steps_per_epoch for s, q in enumerate(qs) if q >= k) for k in (2, 5, 10, 15)) == reach
    assert round(sum(qs) / len(qs), 2) == mean_q and 2 * sum(qs) == forwards
    assert max(qs) == 15  # the code caps at 15 although β was calibrated for 20


def test_paper_schedule_is_a_power_law_in_the_epoch_index():
    """paper: Q = min(max(⌊0.85·e^0.45⌋, 1), 20), constant within an epoch, e = ⌊step/⌈N/B⌉⌋."""
    plan = TrainingPlan(train_size=1000, batch_size=16, total_steps=10**7)
    schedule = make_schedule("paper", plan)
    for epoch in (0, 1, 5, 17, 100, 1000, 10**5):
        expected = min(max(int(0.85 * epoch ** 0.45), 1), 20)
        assert schedule.queries(epoch * 63) == schedule.queries(epoch * 63 + 62) == expected
    assert schedule.queries(10**5 * 63) == 20


def test_fixed_schedule_and_bad_variants():
    """fixed keeps Q constant; an unknown variant or Q < 1 is refused."""
    plan = TrainingPlan(train_size=100, batch_size=10, total_steps=1000)
    assert {make_schedule("fixed", plan, fixed_queries=3).queries(s) for s in range(0, 1000, 7)} == {3}
    with pytest.raises(ValueError, match="valid"):
        make_schedule("exponential", plan)
    with pytest.raises(ValueError):
        make_schedule("fixed", plan, fixed_queries=0)


@pytest.mark.parametrize("method, model, args, expected", [
    ("adazeta", "random:llama2-7b", {"rank": 5}, 610_560),
    ("adazeta", "random:roberta-large", {"rank": 5}, 136_704),
    ("loretta-adp", "random:llama2-7b", {"rank": 5, "train_norms": True}, 876_800),
    ("loretta-rep", "random:llama2-7b", {"tt_rank": 8, "train_norms": True}, 516_096),
    ("lora", "random:llama2-7b", {"rank": 8}, 4_194_304),
])
def test_inspect_reproduces_the_references_parameter_counts(method, model, args, expected):
    """Trainable parameter counts on the meta device equal the reference's (AdaZeta/LoRETTA papers and code)."""
    assert inspect_method(method, model, args)["trainable_params"] == expected


@pytest.mark.integration
def test_inspect_cli_prints_the_count_and_the_tt_shapes():
    """`zobench inspect` prints the count, the placement and the TT shapes, and refuses unknown methods (exit 2)."""
    cmd = [sys.executable, "-m", "zobench.cli", "inspect", "--method", "adazeta", "--model", "random:llama2-7b", "--rank", "5"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "610,560" in out.stdout and "mlp.gate_proj" in out.stdout and "[16, 16, 16, 4, 4, 4]" in out.stdout
    bad = subprocess.run(cmd[:5] + ["nope", "--model", "random:tiny-llama"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "valid methods" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def _counting(model, batch):
    calls = []

    def closure():
        calls.append(1)
        return classification_loss(model, batch)

    return closure, calls


def test_adazeta_steps_follow_the_schedule_and_touch_only_adapters(tiny_batch):
    """Forwards per step = 2·Q(epoch) as the closure sees them, and only `.adapter.` tensors change."""
    model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
    base = {id(p): p.detach().clone() for p in model.parameters()}
    plan = TrainingPlan(train_size=16, batch_size=4, total_steps=40)  # 4 steps an epoch, 10 epochs
    method = adazeta.build(model, make_args("adazeta", {"lr": 1e-2}), seed=0, plan=plan)
    closure, calls = _counting(model, tiny_batch)
    per_step = []
    for _ in range(12):
        n = len(calls)
        method.step(closure)
        per_step.append(len(calls) - n)
        assert method.forwards_last_step == per_step[-1]
    expected = [2 * method.schedule.queries(s) for s in range(12)]
    assert per_step == expected and expected[0] == 2 and expected[-1] > 2
    for n, p in model.named_parameters():
        assert (".adapter." in n) == (id(p) not in base), n  # the adapters are exactly the new tensors
        if id(p) in base:
            assert torch.equal(p, base[id(p)]), n
    assert all(p.requires_grad == (".adapter." in n) for n, p in model.named_parameters())


def test_adazeta_weight_decay_skips_biases(tiny_batch):
    """With a flat loss (g = 0) one step only decays: cores shrink by (1 − lr·wd), biases stay put."""
    model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
    method = adazeta.build(model, make_args("adazeta", {"lr": 0.5, "weight_decay": 0.1}), seed=0)
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    before = {n: p.detach().clone() for n, p in named.items()}
    method.step(lambda: torch.tensor(1.0))
    for n, p in named.items():
        expected = before[n] if n.endswith("bias") else before[n] * (1 - 0.5 * 0.1)
        assert torch.allclose(p, expected, atol=1e-6), n


def test_loretta_adp_norms_option_and_zo_variant(tiny_batch):
    """train_norms False freezes norms (the package's behaviour); the ZO variant changes only what it declares."""
    model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
    method = loretta_adp.build(model, make_args("loretta-adp", {"train_norms": False, "optimizer": "zo"}), seed=0)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(".adapter." in n for n in names) and "zo" in method.variant
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    method.step(lambda: classification_loss(model, tiny_batch))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= set(names)


@pytest.mark.integration
def test_tt_methods_suite_runs_end_to_end_on_the_tiny_model(tmp_path):
    """Every TT method of the tt-methods suite ends ok on tiny-llama; AdaZeta records its schedule and forwards."""
    import json
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "zobench.cli", "run", "--suite", "tt-methods", "--models", "random:tiny-llama",
           "--results-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    records = {p.stem.split("--")[2]: json.loads(p.read_text()) for p in (tmp_path / "runs" / "tt-methods").glob("*.json")}
    assert set(records) == {"floor", "mezo-lora", "adazeta", "loretta-adp", "loretta-adp-zo", "loretta-rep", "loretta-rep-zo"}
    assert all(r["status"] == "ok" for r in records.values())
    ada = records["adazeta"]
    assert ada["metrics"]["forwards_total"] == ada["series"]["forwards"][-1] == 2 * ada["metrics"]["steps_done"]
    assert ada["method_info"]["details"]["schedule"]["variant"] == "code"
    assert ada["method_info"]["details"]["plan"] == {"train_size": 64, "batch_size": 8, "total_steps": 6}
    assert "placement-code" in ada["method_info"]["variant"] and "restore_drift_max" in ada["metrics"]
    assert records["loretta-rep-zo"]["method_info"]["variant"].endswith("+zo-q1")
