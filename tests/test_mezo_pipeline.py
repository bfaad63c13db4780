"""Pipelined MeZO (restore + update + next perturbation in one pass) follows the unfused trajectory,
and θ is exactly θ_t whenever anything outside the step looks at it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from zobench.api import Flushable, flush
from zobench.methods import adazeta, mezo
from zobench.run.worker import execute_cell
from zobench.run.suite import Overrides, expand, load_suite


class TinyNet(torch.nn.Module):
    """Two layers and a bias on fixed data: a smooth, non-quadratic loss."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.fc1 = torch.nn.Linear(32, 64).to(dtype)
        self.fc2 = torch.nn.Linear(64, 1).to(dtype)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_((torch.randn(p.shape, generator=gen) * 0.3).to(dtype))
        self.x = torch.randn(16, 32, generator=gen).to(dtype)
        self.y = torch.randn(16, 1, generator=gen).to(dtype)

    def loss(self) -> torch.Tensor:
        """Evaluated in fp64 from the stored weights, so the loss adds no rounding of its own: the
        comparison sees only how the two step orders round θ (an fp32 loss alone would add
        ~1e-7/ε to every g)."""
        d = lambda t: t.double()  # noqa: E731
        hidden = torch.tanh(d(self.x) @ d(self.fc1.weight).T + d(self.fc1.bias))
        return ((hidden @ d(self.fc2.weight).T + d(self.fc2.bias) - d(self.y)) ** 2).mean()


def run(dtype: torch.dtype, eps: float, **args) -> tuple[list[list[torch.Tensor]], list[float]]:
    """5 steps with an 'evaluation' (flush, then a look at θ) after step 2 and at the end."""
    model = TinyNet(dtype)
    method = mezo.build(model, mezo.Args(lr=1e-2, eps=eps, weight_decay=0.1, **args), 7)
    seen, losses = [], []
    for step in range(1, 6):
        losses.append(method.step(model.loss))
        if step in (2, 5):
            flush(method)
            seen.append([p.detach().clone() for p in model.parameters()])
            model.loss()  # the evaluation itself; the next step must continue from here
    return seen, losses


@pytest.mark.parametrize("dtype, eps, ulps", [(torch.float32, 1e-3, 64), (torch.bfloat16, 5e-2, 4)])
def test_pipelined_equals_unfused_at_every_evaluation(dtype, eps, ulps):
    """Pipelined (2 passes a step) = unfused (4 passes a step, the reference order) within float
    rounding, at an evaluation mid-run and at the end. The pipelined pass rounds once where the
    unfused passes round 2–3 times, so θ differs by a few ulps per step; those differences reach
    g only as ulp(θ)/ε, which stays a rounding-level effect at this ε. The bound is ``ulps`` ulps
    of the largest weight; a real error (a missing or doubled term) moves θ by lr·g·z ≈ 1e-2."""
    unfused, losses_u = run(dtype, eps, fused_update=False)
    piped, losses_p = run(dtype, eps, pipeline=True)
    for at_unfused, at_piped in zip(unfused, piped):
        for a, b in zip(at_unfused, at_piped):
            ulp = torch.finfo(dtype).eps * float(a.float().abs().max())
            diff = float((a.float() - b.float()).abs().max())
            assert diff <= ulps * ulp, f"{dtype}: {diff:.3e} > {ulps} ulps ({ulps * ulp:.3e})"
    start = [p.detach() for p in TinyNet(dtype).parameters()]
    moved = max(float((a.float() - b.float()).abs().max()) for a, b in zip(unfused[-1], start))
    assert moved > 100 * torch.finfo(dtype).eps, "the run must actually train for the comparison to mean anything"
    # The logged losses are L(θ+εz) at θs that differ by those few ulps: bf16's ulp is 0.8% of a
    # weight, so its losses agree to a few percent; fp32's to ~1e-5.
    assert losses_u == pytest.approx(losses_p, rel=5e-2 if dtype == torch.bfloat16 else 1e-5)


def test_pipeline_makes_two_passes_a_step_and_flush_is_idempotent():
    """Counting the kernel passes: unfused 4 per step, fused 3, pipelined 2 (+1 for the very first
    perturbation and +1 per flush); a second flush does nothing."""
    from zobench.methods import _counter_directions

    calls = []
    original = _counter_directions._zgen.axpy_

    def counting(p, j, terms, **kw):
        calls.append(len(terms))
        return original(p, j, terms, **kw)

    for args, per_step in (({"fused_update": False}, 4), ({}, 3), ({"pipeline": True}, 2)):
        model = TinyNet(torch.float32)
        method = mezo.build(model, mezo.Args(**args), 0)
        n_tensors = len(method.params)
        _counter_directions._zgen.axpy_ = counting
        try:
            calls.clear()
            for _ in range(4):
                method.step(model.loss)
            passes = len(calls) / n_tensors
            flush(method)
            flushed = len(calls) / n_tensors - passes
            flush(method)
            assert len(calls) / n_tensors - passes == flushed
        finally:
            _counter_directions._zgen.axpy_ = original
        first_extra = 1 if args.get("pipeline") else 0
        assert passes == 4 * per_step + first_extra, args
        assert flushed == (1 if args.get("pipeline") else 0)


def test_pipeline_is_declared_recorded_and_refused_where_it_cannot_work():
    """The variant names the pipeline and the generator; pipeline without fused restore or with a
    snapshot restore is a build error; MeZO and AdaZeta declare Flushable."""
    model = TinyNet(torch.float32)
    method = mezo.build(model, mezo.Args(pipeline=True), 0)
    assert isinstance(method, Flushable) and "+pipeline" in method.variant
    assert method.details["generator"] == "counter-philox" and method.details["pipeline"] is True
    for bad in ({"fused_update": False}, {"restore": "snapshot"}):
        with pytest.raises(ValueError):
            mezo.build(TinyNet(torch.float32), mezo.Args(pipeline=True, **bad), 0)
    assert issubclass(adazeta.AdaZeta, Flushable)


def smoke_cell(**changes):
    cell = expand(load_suite("smoke"), Overrides(methods=["mezo"]))[0]
    return dataclasses.replace(cell, **changes)


def test_worker_flushes_before_every_evaluation_so_dev_curves_match():
    """A cell with pipeline on and dev evaluations every 2 steps reports the unpipelined cell's
    dev curve, accuracies and losses (fp32 rounding apart): evaluation never sees θ + εz."""
    records = []
    for pipeline in (False, True):
        cell = smoke_cell(steps=5, eval_every=2, args={"lr": 1e-3, "eps": 1e-3, "pipeline": pipeline})
        record = execute_cell({"cell": cell.to_dict(), "data_dir": None}, lambda k, d: None)
        assert record["status"] == "ok", record.get("traceback")
        records.append(record)
    plain, piped = records
    assert "+pipeline" in piped["method_info"]["variant"] and piped["method_info"]["details"]["pipeline"]
    assert [p[0] for p in piped["series"]["dev"]] == [0, 2, 4, 5]
    for a, b in zip(plain["series"]["dev"], piped["series"]["dev"]):
        assert a[1] == b[1] and a[2] == pytest.approx(b[2], rel=1e-5)
    assert plain["series"]["loss"] == pytest.approx(piped["series"]["loss"], rel=1e-5)
    assert plain["metrics"]["accuracy"] == piped["metrics"]["accuracy"]


def test_adazeta_pipelined_follows_the_unpipelined_run_as_q_grows(tiny_batch):
    """AdaZeta's Q varies by epoch: the pipelined run draws step t+1's first seed ahead and the rest at
    step t+1, so its seeds, and its adapters after 6 steps (Q 1 → 2), match the unpipelined run.
    The loss is fp32 here: its rounding (≈1e-7·L) over 2ε moves g by ≈1e-4·L, so the adapters
    agree to ≈ lr·1e-4·L·|z| per query, far inside 1e-4, while training moves them by more than 1e-3."""
    from zobench.api import TrainingPlan
    from zobench.models import load_model
    from zobench.registry import make_args
    from zobench.scoring.causal_lm import classification_loss

    plan = TrainingPlan(train_size=8, batch_size=4, total_steps=12)  # Q: 1, 1, 1, 1, 2, 2
    trained = []
    for pipeline in (False, True):
        model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
        method = adazeta.build(model, make_args("adazeta", {"lr": 1e-2, "pipeline": pipeline}), 0, plan=plan)
        initial = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        for _ in range(6):
            method.step(lambda: classification_loss(model, tiny_batch))
        flush(method)
        assert [method.schedule.queries(s) for s in (0, 5)] == [1, 2]
        trained.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
    for name, value in trained[0].items():
        torch.testing.assert_close(trained[1][name], value, rtol=0, atol=1e-4)
    assert max(float((trained[0][n] - initial[n]).abs().max()) for n in initial) > 1e-3  # it trained: 10× the tolerance
    assert "+pipeline" in method.variant
