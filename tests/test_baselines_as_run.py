"""Baselines as the papers ran them: first-order precision policies, LR schedule and clipping,
MeZO's batch semantics, fp32 adapters and the ZO loss dtype."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from zobench.api import TrainingPlan
from zobench.methods import mezo, mezo_lora
from zobench.methods._tt import ADAPTER_PRESETS_64, LORA_PRESETS_8, TTLinear, tt_modes
from zobench.models import load_model
from zobench.registry import make_args, method_module
from zobench.scoring.causal_lm import classification_loss, collate, encode, loss_in_model_dtype
from zobench.run.suite import Overrides, expand, load_suite
from zobench.tasks import get_task
from zobench.run import worker
from zobench.run.worker import batch_plan, batches, execute_cell

STEPS = 20
DIVERGE_STEPS = 60  # the fp16 eps test: enough steps for the unfloored run to reach NaN on every CPU seen
# Learning rates at which the tiny random model's loss visibly falls within 20 steps.
FO_LRS = {"ft": 1e-3, "lora": 1e-2, "loretta-adp": 1e-2}


def tiny(dtype: str, model: str = "random:tiny-llama"):
    net, tokenizer, _ = load_model(model, dtype, "cpu", seed=0)
    splits = get_task("synthetic").load(None, {"train": 8, "dev": 2, "test": 2}, 0)
    return net, collate(encode(tokenizer, splits.train, 64), 0)


def build(name: str, model, steps: int = STEPS, **args):
    return method_module(name).build(model, make_args(name, args), 0,
                                     plan=TrainingPlan(train_size=8, batch_size=8, total_steps=steps))


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("precision", ["amp", "pure"])
@pytest.mark.parametrize("name", ["ft", "lora", "loretta-adp"])
def test_first_order_methods_train_in_half_precision(name, precision, dtype):
    """20 steps on fp16/bf16 weights under both policies: every loss and every parameter stays
    finite and the loss falls (torch's plain AdamW on fp16 weights is NaN after one step)."""
    model, batch = tiny(dtype)
    method = build(name, model, lr=FO_LRS[name], precision=precision)
    losses = [method.step(lambda: classification_loss(model, batch)) for _ in range(STEPS)]
    assert all(math.isfinite(x) for x in losses), losses
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert losses[-1] < losses[0] - 1e-3, losses
    assert f"{precision}-{dtype}" in method.variant and method.details["precision"] == f"{precision}-{dtype}"


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_amp_keeps_fp32_masters_and_pure_keeps_the_model_dtype(dtype):
    """amp: trainable tensors and AdamW states fp32, frozen weights untouched, a loss scaler for fp16
    only; pure: the tensors and states stay in the model's dtype."""
    half = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    model, batch = tiny(dtype)
    amp = build("lora", model, lr=1e-3)
    amp.step(lambda: classification_loss(model, batch))
    assert {p.dtype for p in amp.params} == {torch.float32}
    assert {s["exp_avg_sq"].dtype for s in amp.optimizer.state.values()} == {torch.float32}
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {half}
    assert amp.scaler.is_enabled() == (dtype == "fp16")
    model, batch = tiny(dtype)
    pure = build("ft", model, lr=1e-3, precision="pure")
    pure.step(lambda: classification_loss(model, batch))
    assert {p.dtype for p in pure.params} == {half}
    assert {s["exp_avg_sq"].dtype for s in pure.optimizer.state.values()} == {half}
    assert not pure.scaler.is_enabled()


@pytest.mark.integration  # 120 fp16 training steps: about 26 s on 2 cores, too costly for the quick loop
def test_pure_fp16_needs_the_eps_floor():
    """The reason for pure's eps: fused AdamW with eps 1e-8 on fp16 weights runs into NaN at lr 1e-3
    (the fp16 second moment underflows and eps is the whole denominator); pure's floor does not.
    When the NaN comes depends on the CPU's kernels (before step 20 on an AVX-512 Xeon, at step 34
    on an AVX2 EPYC), so both runs get DIVERGE_STEPS."""
    model, batch = tiny("fp16")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    for _ in range(DIVERGE_STEPS):
        classification_loss(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert not all(torch.isfinite(p).all() for p in model.parameters())
    model, batch = tiny("fp16")
    method = build("ft", model, steps=DIVERGE_STEPS, lr=1e-3, precision="pure")
    assert method.optimizer.param_groups[0]["eps"] == torch.finfo(torch.float16).tiny
    for _ in range(DIVERGE_STEPS):
        method.step(lambda: classification_loss(model, batch))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_linear_schedule_follows_the_formula():
    """lr_t = lr·(T − t)/T (no warm-up, HF's linear schedule) at the first, middle and last step;
    constant stays put; a build without a plan runs constant and says so."""
    model, batch = tiny("fp32")
    method = build("ft", model, steps=10, lr=1e-3)
    used = []
    for _ in range(10):
        method.step(lambda: classification_loss(model, batch))
        used.append(method.last_lr)
    for t in (0, 5, 9):
        assert used[t] == pytest.approx(1e-3 * (10 - t) / 10, rel=1e-12)
    assert "lr-linear(10)" in method.variant
    model, _ = tiny("fp32")
    constant = build("ft", model, steps=10, lr=1e-3, lr_schedule="constant")
    for _ in range(3):
        constant.step(lambda: classification_loss(model, batch))
    assert constant.last_lr == 1e-3
    model, _ = tiny("fp32")
    no_plan = method_module("ft").build(model, make_args("ft", {}), 0)
    assert "lr-constant(no-plan)" in no_plan.variant


@pytest.mark.parametrize("max_norm", [0.05, None])
def test_clipping_bounds_the_applied_gradient_norm(max_norm):
    """With SGD at lr 1 the update is the applied gradient: its norm is at most max_grad_norm when
    clipping is on, and larger (the raw gradient) when it is off."""
    model, batch = tiny("fp32")
    method = build("ft", model, lr=1.0, optimizer="sgd", lr_schedule="constant", max_grad_norm=max_norm)
    before = [p.detach().clone() for p in method.params]
    method.step(lambda: classification_loss(model, batch))
    applied = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(method.params, before))).item()
    if max_norm is None:
        assert applied > 0.05 and "no-clip" in method.variant
    else:
        assert applied <= max_norm * (1 + 1e-5) and method.last_grad_norm > max_norm


def test_batches_keep_the_short_last_batch_and_take_the_whole_set_when_too_big():
    """MeZO's loader: 32 examples at batch 64 give all 32 every step; 40 at batch 16 give 16, 16, 8
    per epoch (⌈N/B⌉ batches, every example once), which batch_plan records."""
    sampler = batches(32, 64, seed=0)
    for _ in range(3):
        assert sorted(next(sampler)) == list(range(32))
    sampler = batches(40, 16, seed=0)
    epoch = [next(sampler) for _ in range(3)]
    assert [len(b) for b in epoch] == [16, 16, 8] and sorted(sum(epoch, [])) == list(range(40))
    assert batch_plan(40, 16) == {"batch_size": 16, "effective_batch_size": 16, "steps_per_epoch": 3,
                                  "last_batch_size": 8}
    assert batch_plan(32, 64)["effective_batch_size"] == 32 and TrainingPlan(32, 32, 10).steps_per_epoch == 1


def run_in_process(cell) -> tuple[dict, list]:
    messages = []
    record = execute_cell({"cell": cell.to_dict(), "data_dir": None}, lambda k, d: messages.append((k, d)))
    return record, messages


def test_a_batch_above_the_train_set_runs_on_the_whole_set_with_a_warning(monkeypatch):
    """A 32-example train set at batch 64 runs: one batch per step holding all 32, the record and
    the progress say so, and AdaZeta's plan has the loader's epoch (one step)."""
    drawn = []

    def spy(n_examples, batch_size, seed):
        for batch in batches(n_examples, batch_size, seed):
            drawn.append(sorted(batch))
            yield batch

    monkeypatch.setattr(worker, "batches", spy)
    base = expand(load_suite("smoke"), Overrides(methods=["ft"]))[0]
    cell = dataclasses.replace(base, batch_size=64, split_sizes={"train": 32, "dev": 8, "test": 8}, steps=3)
    record, messages = run_in_process(cell)
    assert record["status"] == "ok", record.get("traceback")
    assert drawn == [list(range(32))] * 3
    assert record["data"]["batches"] == {"batch_size": 64, "effective_batch_size": 32, "steps_per_epoch": 1,
                                         "last_batch_size": 32}
    assert any("exceeds the 32 training examples" in w for w in record["warnings"])
    assert any(k == "warning" for k, _ in messages)
    ada = dataclasses.replace(cell, label="adazeta", method="adazeta",
                              args=dataclasses.asdict(make_args("adazeta", {})))
    record, _ = run_in_process(ada)
    assert record["status"] == "ok", record.get("traceback")
    assert record["method_info"]["details"]["plan"] == {"train_size": 32, "batch_size": 32, "total_steps": 3}


def test_fp32_adapters_restore_exactly_where_bf16_adapters_drift():
    """MeZO-LoRA on a bf16 base: one perturb/restore cycle moves fp32 adapters by ~1e-8 rms
    (fp32 rounding), bf16 adapters by ~1e-4 (the size of a real update at lr 1e-4)."""
    drift = {}
    for adapter_dtype in ("fp32", "model"):
        model, _, _ = load_model("random:tiny-llama", "bf16", "cpu", seed=0)
        method = mezo_lora.build(model, mezo_lora.Args(eps=1e-3, adapter_dtype=adapter_dtype), 0)
        assert {p.dtype for p in method.params} == {torch.float32 if adapter_dtype == "fp32" else torch.bfloat16}
        drift[adapter_dtype] = method.drift_probe()["restore_drift_rms"]
    assert drift["fp32"] < 1e-7 < 1e-5 < drift["model"]


def test_fp32_adapters_run_on_a_bf16_base():
    """peft casts the input to the fp32 adapters and the result back to bf16: a ZO step runs."""
    model, batch = tiny("bf16")
    method = mezo_lora.build(model, mezo_lora.Args(adapter_dtype="fp32"), 0)
    loss = method.step(lambda: classification_loss(model, batch))
    assert math.isfinite(loss) and "adapters-fp32" in method.variant


def test_zo_loss_dtype_model_computes_the_loss_in_fp16():
    """loss_dtype model: the training loss is computed in the model's fp16 (MeZO's OPT runs);
    fp32 (the default) upcasts. Evaluation outside the method stays fp32."""
    model, batch = tiny("fp16", "random:tiny-opt")
    assert classification_loss(model, batch).dtype == torch.float32
    with loss_in_model_dtype():
        assert classification_loss(model, batch).dtype == torch.float16
    seen = []

    def closure():
        loss = classification_loss(model, batch)
        seen.append(loss.dtype)
        return loss

    fp16 = mezo.MeZO(model, mezo.Args(loss_dtype="model"), 0)
    fp16.step(closure)
    assert seen == [torch.float16, torch.float16] and "loss-in-model-dtype" in fp16.variant
    seen.clear()
    mezo.MeZO(model, mezo.Args(), 0).step(closure)
    assert seen == [torch.float32, torch.float32]


def test_loretta_uses_the_packages_mode_order_and_adazeta_the_reversed_one():
    """LoRETTA's up projection reuses the down list (loretta tensor_util), AdaZeta reverses it; the
    parameter counts are equal either way."""
    package = tt_modes(64, 4096, ADAPTER_PRESETS_64, reverse_up=False)
    adazeta = tt_modes(64, 4096, ADAPTER_PRESETS_64)
    assert package == [16, 16, 16, 4, 4, 4] and adazeta == [4, 4, 4, 16, 16, 16]
    assert tt_modes(8, 4096, LORA_PRESETS_8, reverse_up=False) == LORA_PRESETS_8[4096]

    def count(modes, n_in, n_out):
        return sum(p.numel() for p in TTLinear(n_in, n_out, modes, 5, contraction="sequential").parameters())

    assert count(package, 64, 4096) == count(adazeta, 64, 4096)
