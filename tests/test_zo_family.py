"""The ZO optimizer family is faithful to its official code: one hand-computed step per method and
variant on tiny quadratics, the optimizers against torch.optim, HiZOO's half-precision freeze,
MeZO-SVRG's forward accounting and anneal floor, Forward-Grad's exact JVP."""

from __future__ import annotations

import math

import pytest
import torch
from quadratic import Quadratic

from zobench.api import TrainingPlan
from zobench.methods import forward_grad, hizoo, mezo_svrg, zo_adam, zo_cons, zo_momentum, zo_sign
from zobench.methods._zo import draw_step_seed, gaussian_directions


def quadratic(dtype=torch.float64) -> Quadratic:
    """f(θ) = ½·Σ h_i θ_i² over a weight (3) and a bias (1), the loss computed in fp64 (= f below)."""
    return Quadratic([0.5, -1.0, 0.25], [2.0], h=[1.0, 3.0, 10.0, 2.0], dtype=dtype)


def f(w, b, h) -> torch.Tensor:
    return 0.5 * (h[:3] * w**2).sum() + 0.5 * (h[3:] * b**2).sum()


def step_seeds(seed: int, n: int) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    return [draw_step_seed(gen) for _ in range(n)]


def directions(model: Quadratic, step_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(gaussian_directions([model.weight, model.bias], step_seed))


def spsa(model: Quadratic, w, b, zw, zb, eps) -> float:
    """(f(θ+εz) − f(θ−εz)) / 2ε, computed by hand."""
    return ((f(w + eps * zw, b + eps * zb, model.h) - f(w - eps * zw, b - eps * zb, model.h)) / (2 * eps)).item()


def close(actual, expected, tol=1e-12):
    torch.testing.assert_close(actual.detach(), expected, rtol=0, atol=tol)


# ---- ZO-SGD-Sign ----------------------------------------------------------------------------


def test_sign_with_sgd_steps_along_sign_of_c_times_z():
    """Code form with SGD: Δθ = −lr·sign(c)·z (MeZO with |c| dropped)."""
    model, lr, eps, seed = quadratic(), 0.01, 1e-3, 3
    w0, b0 = model.theta()
    method = zo_sign.build(model, zo_sign.Args(lr=lr, eps=eps, base_optimizer="sgd"), seed)
    method.step(model.loss)
    zw, zb = directions(model, step_seeds(seed, 1)[0])
    c = spsa(model, w0, b0, zw, zb, eps)
    assert c != 0
    close(model.weight, w0 - lr * math.copysign(1, c) * zw)
    close(model.bias, b0 - lr * math.copysign(1, c) * zb)
    assert method.variant.startswith("code-sign(c)·z+sgd")


def test_sign_paper_form_steps_along_elementwise_sign():
    """Paper form: Δθ = −lr·sign(c·z) elementwise (every coordinate moves by exactly lr)."""
    model, lr, eps, seed = quadratic(), 0.01, 1e-3, 4
    w0, b0 = model.theta()
    method = zo_sign.build(model, zo_sign.Args(lr=lr, eps=eps, base_optimizer="sgd", sign="elementwise"), seed)
    method.step(model.loss)
    zw, zb = directions(model, step_seeds(seed, 1)[0])
    c = spsa(model, w0, b0, zw, zb, eps)
    close(model.weight, w0 - lr * torch.sign(c * zw))
    close(model.bias, b0 - lr * torch.sign(c * zb))
    assert method.variant.startswith("paper-sign(c·z)")


def test_sign_with_hf_adamw_first_step_is_near_elementwise_sign():
    """Code default (HF AdamW, bias-corrected, eps outside): step 1 is −lr·g·√(1−β₂)/(√(1−β₂)|g| + 1e-8), g = sign(c)·z."""
    model, lr, eps, seed = quadratic(), 0.01, 1e-3, 5
    w0, b0 = model.theta()
    method = zo_sign.build(model, zo_sign.Args(lr=lr, eps=eps), seed)
    method.step(model.loss)
    zw, zb = directions(model, step_seeds(seed, 1)[0])
    s = math.copysign(1, spsa(model, w0, b0, zw, zb, eps))
    k = math.sqrt(1 - 0.999)
    for p, p0, z in ((model.weight, w0, zw), (model.bias, b0, zb)):
        g = s * z
        close(p, p0 - lr * g * k / (k * g.abs() + 1e-8))
        close(p, p0 - lr * torch.sign(g), tol=1e-7)  # ≈ lr·sign(c·z) elementwise, to O(1e-8/|g|)
    assert "hf-adamw" in method.variant and method.details["state_bytes"] == 2 * 4 * 8


# ---- ZO-SGD-MMT -----------------------------------------------------------------------------


def test_momentum_two_steps_match_torch_sgd_momentum_by_hand():
    """b₁ = c₁z₁, b₂ = μ·b₁ + c₂z₂ (c₂ at θ₁), θ₂ = θ₀ − lr·c₁z₁ − lr·b₂."""
    model, lr, eps, seed, mu = quadratic(), 0.01, 1e-3, 6, 0.9
    w0, b0 = model.theta()
    method = zo_momentum.build(model, zo_momentum.Args(lr=lr, eps=eps, momentum=mu), seed)
    method.step(model.loss)
    method.step(model.loss)
    (zw1, zb1), (zw2, zb2) = (directions(model, s) for s in step_seeds(seed, 2))
    c1 = spsa(model, w0, b0, zw1, zb1, eps)
    w1, b1 = w0 - lr * c1 * zw1, b0 - lr * c1 * zb1
    c2 = spsa(model, w1, b1, zw2, zb2, eps)
    close(model.weight, w1 - lr * (mu * c1 * zw1 + c2 * zw2))
    close(model.bias, b1 - lr * (mu * c1 * zb1 + c2 * zb2))


# ---- ZO-SGD-Cons ----------------------------------------------------------------------------


@pytest.mark.parametrize("lr", [0.01, 5.0])
def test_cons_with_sgd_keeps_the_best_of_three_candidates_in_five_forwards(lr):
    """Paper form (SGD): θ_new = argmin{f(θ), f(θ − lr·c·z), f(θ + lr·c·z)}, 5 forwards; at lr 5 the
    step overshoots and θ stays put; the logged loss is f(θ − lr·c·z) (the code's loss1)."""
    model, eps, seed = quadratic(), 1e-3, 7
    w0, b0 = model.theta()
    method = zo_cons.build(model, zo_cons.Args(lr=lr, eps=eps, base_optimizer="sgd"), seed)
    calls = []
    logged = method.step(lambda: calls.append(1) or model.loss())
    assert len(calls) == 5 == method.forwards_last_step
    zw, zb = directions(model, step_seeds(seed, 1)[0])
    c = spsa(model, w0, b0, zw, zb, eps)
    candidates = [(w0, b0), (w0 - lr * c * zw, b0 - lr * c * zb), (w0 + lr * c * zw, b0 + lr * c * zb)]
    losses = [f(w, b, model.h).item() for w, b in candidates]
    best = candidates[losses.index(min(losses))]
    close(model.weight, best[0], tol=1e-10)
    close(model.bias, best[1], tol=1e-10)
    assert logged == pytest.approx(losses[1], abs=1e-12)
    if lr == 5.0:
        assert losses.index(min(losses)) == 0  # the overshoot is rejected
    assert method.variant.startswith("paper-sgd")


def test_cons_with_hf_adamw_advances_adam_two_or_three_times_per_step():
    """Code form (the sweeps' HF AdamW): each candidate move is an Adam step, 2 or 3 per ZO step."""
    model = quadratic()
    method = zo_cons.build(model, zo_cons.Args(lr=0.01, eps=1e-3), 8)
    counts = []
    for _ in range(6):
        before = method.optimizer.steps.get(0, 0)
        method.step(model.loss)
        counts.append(method.optimizer.steps[0] - before)
    assert set(counts) <= {2, 3} and method.variant.startswith("code-hf-adamw")


# ---- ZO-Adam --------------------------------------------------------------------------------


def test_zo_adam_equals_torch_adam_fed_dense_c_z_for_three_steps():
    """In fp32, three ZO-Adam steps equal torch.optim.Adam fed grad = c·z (same seeds) to 1e-7."""
    model, lr, eps, seed = quadratic(torch.float32), 1e-2, 1e-3, 9
    method = zo_adam.build(model, zo_adam.Args(lr=lr, eps=eps), seed)
    ref_w = torch.nn.Parameter(model.weight.detach().clone())
    ref_b = torch.nn.Parameter(model.bias.detach().clone())
    ref = torch.optim.Adam([ref_w, ref_b], lr=lr)
    for step_seed in step_seeds(seed, 3):
        loss_fn = lambda: f(ref_w.double(), ref_b.double(), model.h)  # noqa: E731
        zw, zb = gaussian_directions([ref_w, ref_b], step_seed)
        with torch.no_grad():  # the estimate exactly as the method takes it: perturb in place in fp32
            ref_w.add_(zw, alpha=eps), ref_b.add_(zb, alpha=eps)
            pos = loss_fn()
            ref_w.add_(zw, alpha=-2 * eps), ref_b.add_(zb, alpha=-2 * eps)
            neg = loss_fn()
            ref_w.add_(zw, alpha=eps), ref_b.add_(zb, alpha=eps)
        c = ((pos - neg) / (2 * eps)).item()
        ref_w.grad, ref_b.grad = c * zw, c * zb
        ref.step()
        method.step(model.loss)
    torch.testing.assert_close(model.weight.detach(), ref_w.detach(), rtol=0, atol=1e-7)
    torch.testing.assert_close(model.bias.detach(), ref_b.detach(), rtol=0, atol=1e-7)
    assert not torch.equal(model.weight.detach(), torch.tensor([0.5, -1.0, 0.25]))


# ---- Forward-Grad ---------------------------------------------------------------------------


class DenseQuadratic(torch.nn.Module):
    """L = ½θᵀHθ with a dense symmetric H: the JVP along v is exactly (Hθ)·v."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64))
        a = torch.tensor([[2.0, 0.5, 0.1], [0.3, 1.0, -0.4], [0.2, 0.6, 3.0]], dtype=torch.float64)
        self.H = a @ a.T

    def loss(self) -> torch.Tensor:
        return 0.5 * self.weight @ self.H @ self.weight


def test_forward_grad_jvp_is_exact_on_a_quadratic_and_not_in_inference_mode():
    """jvp = (Hθ)·v exactly; Δθ = −lr·((Hθ)·v)·v; the closure runs outside inference_mode, in one forward."""
    model, lr, seed = DenseQuadratic(), 0.05, 10
    theta0 = model.weight.detach().clone()
    method = forward_grad.build(model, forward_grad.Args(lr=lr), seed)
    modes = []

    def closure():
        modes.append(torch.is_inference_mode_enabled())
        return model.loss()

    (v,) = gaussian_directions([model.weight], step_seeds(seed, 1)[0])
    loss, derivative = method.directional_derivative(closure, (v,))
    expected = ((model.H @ theta0) @ v).item()
    assert derivative == pytest.approx(expected, rel=1e-14, abs=1e-14)
    assert loss == pytest.approx(model.loss().item(), rel=1e-14)
    logged = method.step(closure)
    close(model.weight, theta0 - lr * expected * v)
    assert logged == pytest.approx(0.5 * (theta0 @ model.H @ theta0).item(), rel=1e-14)
    assert modes == [False, False] and method.forwards_last_step == 1


# ---- HiZOO ----------------------------------------------------------------------------------


def hizoo_by_hand(estimator, model, w0, b0, z, eps, lr, alpha):
    """One HiZOO step from H = 1 by the formulas of §2.2 (code2025), §2.3 (code2024), §2.4 (paper)."""
    theta0 = torch.cat([w0, b0])
    loss = lambda t: f(t[:3], t[3:], model.h)  # noqa: E731
    l0, lp, lm = loss(theta0), loss(theta0 + eps * z), loss(theta0 - eps * z)  # H = 1: scale 1
    c, d2 = ((lp - lm) / (2 * eps)).item(), abs((lp + lm - 2 * l0).item())
    h = torch.ones(4, dtype=torch.float64)
    if estimator == "code2025":
        h_new = (1 - alpha) * h + d2 * (h * z * z) * alpha / (2 * eps**2)
        theta = theta0 - lr * c * z / h_new.sqrt()
    elif estimator == "code2024":
        h_new = (1 - alpha) * h + alpha * d2 * (z * z / h) / (2 * eps**2)
        theta = theta0 - lr * c * z * h_new.sqrt()
    else:
        h_new = (1 - alpha) * h + alpha * (d2 / (2 * eps**2) * h * (z * z - 1)).abs()
        theta = theta0 - lr * c * z / h.sqrt()
    return theta, h_new


@pytest.mark.parametrize("estimator", ["code2025", "code2024", "paper"])
def test_hizoo_one_step_by_hand(estimator):
    """Each estimator's H and θ after one step match its formulas (fp64, to 1e-10); 4 forwards."""
    model, lr, eps, alpha, seed = quadratic(), 0.01, 1e-2, 0.1, 11
    w0, b0 = model.theta()
    method = hizoo.build(model, hizoo.Args(lr=lr, eps=eps, alpha=alpha, estimator=estimator), seed)
    calls = []
    method.step(lambda: calls.append(1) or model.loss())
    z = torch.cat(directions(model, step_seeds(seed, 1)[0]))
    theta, h_new = hizoo_by_hand(estimator, model, w0, b0, z, eps, lr, alpha)
    close(torch.cat([model.weight, model.bias]), theta, tol=1e-10)
    close(torch.cat(method.hessian), h_new, tol=1e-10)
    assert not torch.allclose(h_new, torch.ones(4, dtype=torch.float64))  # the step moved H, so the check is not trivial
    assert len(calls) == 4 == method.forwards_last_step


def test_hizoo_code2024_and_code2025_differ_after_one_step():
    """The two code generations scale the step oppositely once ΔL₂ ≠ 0."""
    results = []
    for estimator in ("code2025", "code2024"):
        model = quadratic()
        hizoo.build(model, hizoo.Args(lr=0.01, eps=1e-2, alpha=0.1, estimator=estimator), 12).step(model.loss)
        results.append(model.weight.detach().clone())
    assert not torch.allclose(results[0], results[1])


def test_hizoo_without_the_logging_forward_spends_three():
    model = quadratic()
    method = hizoo.build(model, hizoo.Args(log_forward="none"), 0)
    calls = []
    method.step(lambda: calls.append(1) or model.loss())
    assert len(calls) == 3 == method.forwards_last_step


class Fp16Quadratic(torch.nn.Module):
    """fp16 weights, the loss in fp32 (as zobench's scoring): ½·Σ h θ², h large enough that ΔL₂ ≈ 1e-3."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter((torch.randn(64, generator=gen) * 0.05).half())
        self.h = torch.full((64,), 40.0)

    def loss(self) -> torch.Tensor:
        return 0.5 * (self.h * self.weight.float() ** 2).sum()


@pytest.mark.parametrize("state_dtype", ["param", "fp32"])
def test_hizoo_hessian_is_frozen_in_fp16_state_and_moves_in_fp32(state_dtype):
    """α = 1e-8, fp16 weights: with H in fp16 (the official code) H is bit-identical to ones after 100
    steps (the increment underflows, (1−α)·H rounds to H); with fp32 state H moves."""
    model = Fp16Quadratic()
    method = hizoo.build(model, hizoo.Args(lr=1e-4, eps=1e-3, alpha=1e-8, state_dtype=state_dtype), 13)
    for _ in range(100):
        method.step(model.loss)
    (h,) = method.hessian
    if state_dtype == "param":
        assert h.dtype == torch.float16 and torch.equal(h, torch.ones_like(h))
    else:
        assert h.dtype == torch.float32 and (h > 1).sum() > 32  # H only grows at this α (§2.6)


# ---- MeZO-SVRG ------------------------------------------------------------------------------


class LeastSquares(torch.nn.Module):
    """f(θ) = ½‖Aθ − y‖² per example, n = 8 examples in mini-batches of b = 2 (a mean per batch)."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.weight = torch.nn.Parameter(torch.randn(3, generator=gen, dtype=torch.float64))
        self.A = torch.randn(8, 3, generator=gen, dtype=torch.float64)
        self.y = torch.randn(8, generator=gen, dtype=torch.float64)

    def loss_at(self, theta, idx) -> torch.Tensor:
        return (0.5 * (self.A[idx] @ theta - self.y[idx]) ** 2).mean()

    def loss(self, idx) -> torch.Tensor:
        return self.loss_at(self.weight, idx)


class FakeBatches:
    """An ExtraBatches over LeastSquares' 8 examples in chunks of 2, counting forwards like the worker."""

    def __init__(self, model: LeastSquares):
        self.model, self.forwards = model, 0

    def anchor(self, batches: int = 0):
        assert batches == 0
        chunks = [[0, 1], [2, 3], [4, 5], [6, 7]]

        def closure():
            self.forwards += len(chunks)
            return sum(self.model.loss(c) for c in chunks) / len(chunks)

        return closure


def svrg(model, variant, **args):
    extra = FakeBatches(model)
    plan = TrainingPlan(train_size=8, batch_size=2, total_steps=100, extra_batches=extra)
    method = mezo_svrg.build(model, mezo_svrg.Args(variant=variant, **args), 14, plan)
    return method, extra


def full_loss(model, theta):
    return sum(model.loss_at(theta, c) for c in ([0, 1], [2, 3], [4, 5], [6, 7])) / 4


def c_at(loss, theta, z, eps) -> float:
    return ((loss(theta + eps * z) - loss(theta - eps * z)) / (2 * eps)).item()


@pytest.mark.parametrize("variant", ["official", "paper"])
def test_mezo_svrg_two_iterations_by_hand(variant):
    """Iteration 0 (anchor): θ₁ = θ₀ − η₁·c·z on the full batch, g̃ = c·z. Iteration 1 on B:
    official θ₂ = θ₁ − η₂c₁z₁ + η₂c₂'z₂ − η₂g̃ (c₂' after the first sub-update, independent z₂);
    paper θ₂ = θ₁ − η₂((ĉ(θ₁) − ĉ(θ̄ = θ₀))·z + g̃) with one z."""
    model, eta1, eta2, eps = LeastSquares(), 0.1, 0.05, 1e-3
    theta0 = model.weight.detach().clone()
    method, _ = svrg(model, variant, lr=eta2, lr_full=eta1, eps=eps, q=2)
    batch = [2, 3]
    method.step(lambda: model.loss(batch))
    method.step(lambda: model.loss(batch))
    seeds = step_seeds(14, 3)
    z = lambda s: next(gaussian_directions([model.weight], s))  # noqa: E731
    anchor = lambda t: full_loss(model, t)  # noqa: E731
    mini = lambda t: model.loss_at(t, batch)  # noqa: E731
    g_tilde = c_at(anchor, theta0, z(seeds[0]), eps) * z(seeds[0])
    theta1 = theta0 - eta1 * g_tilde
    if variant == "official":
        z1, z2 = z(seeds[1]), z(seeds[2])
        half = theta1 - eta2 * c_at(mini, theta1, z1, eps) * z1
        theta2 = half + eta2 * c_at(mini, half, z2, eps) * z2 - eta2 * g_tilde
    else:
        z1 = z(seeds[1])
        theta2 = theta1 - eta2 * ((c_at(mini, theta1, z1, eps) - c_at(mini, theta0, z1, eps)) * z1 + g_tilde)
    close(model.weight, theta2, tol=1e-10)
    assert method.details["state_bytes"] == (1 if variant == "official" else 2) * 3 * 8


def test_mezo_svrg_counts_forwards_over_four_iterations():
    """q = 2, n/b = 4 (official): anchor steps 2·4 + 4 logging, inner steps 4 + 1: 12, 5, 12, 5."""
    model = LeastSquares()
    method, extra = svrg(model, "official", q=2)
    per_step = []
    for _ in range(4):
        calls = []
        before = extra.forwards
        method.step(lambda: calls.append(1) or model.loss([0, 1]))
        per_step.append(len(calls) + extra.forwards - before)
        assert method.forwards_last_step == per_step[-1]
    assert per_step == [12, 5, 12, 5]


class RisingBatches:
    """An ExtraBatches whose loss only grows, shared with the step closure: every loss window rises."""

    def __init__(self):
        self.values = iter(range(1, 100_000))

    def closure(self):
        return torch.tensor(float(next(self.values)), dtype=torch.float64)

    def anchor(self, batches: int = 0):
        return self.closure


def test_mezo_svrg_anneal_floor_raises_a_small_lr():
    """4 batches per epoch: the rule runs before iteration k when k % 4 == 0 and more than 16 losses
    exist, so first before k = 20. A rising loss anneals then, and the code's floor max(η₂/5, 1e-6)
    *raises* η₂ = 1e-7 to 1e-6, while η₁ = 1e-4 becomes 2e-5."""
    model, rising = LeastSquares(), RisingBatches()
    plan = TrainingPlan(train_size=8, batch_size=2, total_steps=100, extra_batches=rising)
    method = mezo_svrg.build(model, mezo_svrg.Args(lr=1e-7, lr_full=1e-4, anneal=5.0), 0, plan)
    for _ in range(20):
        method.step(rising.closure)
        assert (method.lr, method.lr_full) == (1e-7, 1e-4)
    method.step(rising.closure)
    assert method.lr == 1e-6 and method.lr_full == pytest.approx(2e-5)


def test_mezo_svrg_in_the_worker_counts_every_anchor_forward():
    """A smoke cell (16 examples, batch 4, q 2): forwards_total 12 + 5 + 12 + 5 = 34 over 4 steps, mean 8.5."""
    from tests.test_worker_and_trackers import run_in_process, smoke_cell

    record, _ = run_in_process(smoke_cell("mezo-svrg", steps=4))
    assert record["status"] == "ok", record.get("traceback")
    assert record["series"]["forwards"] == [12, 17, 29, 34]
    assert record["metrics"]["forwards_total"] == 34 and record["metrics"]["forwards_per_step"] == 8.5
    assert "anchor-full" in record["method_info"]["variant"]


# ---- State memory ---------------------------------------------------------------------------


def test_inspect_reports_the_expected_state_bytes():
    """``zobench inspect`` prints each method's expected state: Adam 2×, HiZOO 1×, in the model's dtype
    (the meta model is bf16: 2 bytes a parameter)."""
    from zobench.inspection import format_summary, inspect_method

    for method, copies in (("zo-adam", 2), ("hizoo", 1), ("zo-sign", 2), ("mezo-svrg", 1)):
        summary = inspect_method(method, "random:tiny-llama", {})
        expected = copies * summary["trainable_params"] * 2
        assert summary["details"]["state_bytes"] == expected
        assert f"optimizer state: {expected:,} bytes" in format_summary(summary)


@pytest.mark.integration
def test_zo_adam_train_phase_vmhwm_rises_by_its_state_over_mezo(tmp_path):
    """On CPU, a ~100M-parameter model in fp32: the train phase's RSS high-water mark of zo-adam
    exceeds mezo's by Adam's m and v (2 × 4 bytes a parameter): at least 0.9× and under 1.5× them. Each cell runs in
    its own process (the launcher's), so neither inherits the other's allocator state."""
    import json
    import os
    import subprocess
    import sys

    suite = tmp_path / "state.yaml"
    suite.write_text("""name: state-memory
models: ["random:llama-100m"]
tasks: [synthetic]
seeds: [0]
steps: 2
batch_size: 2
dtype: fp32
device: cpu
max_length: 32
split_sizes: {train: 4, dev: 2, test: 2}
eval_batch_size: 4
timeout_s: 600
methods:
  mezo: {}
  zo-adam: {}
""")
    results = tmp_path / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "zobench.cli", "run", "--suite", str(suite), "--results-dir",
                           str(results)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {r["cell"]["method"]: r for r in (json.loads(p.read_text()) for p in results.rglob("*.json"))}
    assert {m: r["status"] for m, r in records.items()} == {"mezo": "ok", "zo-adam": "ok"}
    peaks = {m: r["metrics"]["train_cpu_hwm_bytes"] for m, r in records.items()}
    params = records["zo-adam"]["metrics"]["trainable_params"]
    assert params > 90_000_000
    rise, state = peaks["zo-adam"] - peaks["mezo"], 2 * 4 * params
    # Alone the rise is the state within 10%; late in a full test session on a 2-core machine it read
    # 1.45× (the allocator's history: transient update buffers not returned in between). The bounds
    # still fail if the state is missing (< 0.9×) or held in fp64 or copied (≥ 2×).
    assert 0.9 * state <= rise <= 1.5 * state, f"rise {rise / 2**20:.0f} MiB vs state {state / 2**20:.0f} MiB"


@pytest.mark.integration  # a real loop: ~1000 forwards through 17 methods (10 s), too costly for the unit tier
def test_smollm2_frontier_spends_an_equal_forward_budget(tiny_batch):
    """Every method of smollm2-zo-frontier runs its steps within 5 forwards under the 64-forward
    budget, counted as the closures run (on the tiny model; the count depends on the method only)."""
    from zobench.models import load_model
    from zobench.registry import make_args, method_module
    from zobench.scoring.causal_lm import classification_loss
    from zobench.run.suite import Overrides, expand, load_suite

    class CountingBatches:
        def __init__(self, model):
            self.model, self.forwards = model, 0

        def anchor(self, batches: int = 0):
            assert batches > 0  # the suite's anchor is K mini-batches, not the 1000-example split

            def closure():
                self.forwards += batches
                return classification_loss(self.model, tiny_batch)

            return closure

    for cell in expand(load_suite("smollm2-zo-frontier"), Overrides()):
        if cell.method == "floor":
            continue
        model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
        extra = CountingBatches(model)
        plan = TrainingPlan(train_size=1000, batch_size=cell.batch_size, total_steps=cell.steps, extra_batches=extra)
        module, args = method_module(cell.method), make_args(cell.method, cell.args)
        method = module.build(model, args, 0, plan=plan)  # as the worker builds every method
        calls = []
        for _ in range(cell.steps):
            method.step(lambda: calls.append(1) or classification_loss(model, tiny_batch))
        spent = len(calls) + extra.forwards
        assert 59 <= spent <= 64, f"{cell.label}: {spent} forwards"
