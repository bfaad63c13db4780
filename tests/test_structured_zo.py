"""SubZero, ZO-Muon, Sparse-MeZO, FZOO and BSZO against hand-computed steps, their direction laws
and the official code's quirks (shared/reference/newer-zo-methods.md §1, §3, §4, §6, §8)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from zobench.methods import bszo, fzoo, sparse_mezo, subzero, zo_muon
from zobench.methods._directions import (generator, key_seed, lockstep, newton_schulz5,
                                         orthonormal_columns, rademacher_directions, rademacher_draw)
from zobench.methods._zo import draw_step_seed, gaussian_directions
from zobench.models import load_model
from zobench.scoring.causal_lm import classification_loss
from zobench.run.suite import Overrides, expand, load_suite
from zobench.run.worker import execute_cell


def step_seeds(seed: int, n: int) -> list[int]:
    source = torch.Generator().manual_seed(seed)
    return [draw_step_seed(source) for _ in range(n)]


class Linear(torch.nn.Module):
    """L = <G, W> + <g, b>: one-sided and central differences are exact up to rounding."""

    def __init__(self, m: int = 8, n: int = 6, dtype=torch.float64, zero: bool = False):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.W = torch.nn.Parameter(torch.zeros(m, n, dtype=dtype) if zero else torch.randn(m, n, generator=gen, dtype=dtype))
        self.b = torch.nn.Parameter(torch.zeros(m, dtype=dtype) if zero else torch.randn(m, generator=gen, dtype=dtype))
        self.G = torch.randn(m, n, generator=gen, dtype=dtype)
        self.g = torch.randn(m, generator=gen, dtype=dtype)

    def forward(self):
        return (self.G * self.W).sum() + (self.g * self.b).sum()


class Quadratic(Linear):
    """L = ½Σ h_W·W² + ½Σ h_b·b²: central differences are exact, c = Σ h·θ·d."""

    def forward(self):
        return 0.5 * (self.G.abs() * self.W ** 2).sum() + 0.5 * (self.g.abs() * self.b ** 2).sum()


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# ---------------------------------------------------------------- shared direction laws


def test_rademacher_entries_are_signs_with_zero_mean_and_unit_square():
    """Every entry is exactly −1 or +1 (so E‖u‖² = dimension exactly), and the mean over 10⁶ draws is
    within 5 standard errors (5/√10⁶) of 0."""
    p = torch.empty(1000, 1000)
    (u,) = rademacher_directions([p], 3)
    assert set(u.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(u.mean())) < 5 / math.sqrt(u.numel())
    assert float(u.pow(2).sum()) == u.numel()


def test_lockstep_regenerates_each_seed_exactly():
    """The lock-step streams equal the one-seed-at-a-time streams, tensor by tensor."""
    params = [torch.empty(3, 4), torch.empty(5), torch.empty(2, 2, dtype=torch.float16)]
    seeds = [11, 12, 13]
    together = list(lockstep(params, seeds, rademacher_draw))
    for i, seed in enumerate(seeds):
        alone = list(rademacher_directions(params, seed))
        for j, draws in together:
            assert torch.equal(draws[i], alone[j])


def test_newton_schulz_matches_a_float64_evaluation_and_lands_near_orthogonal():
    """NS5 on a fixed 4×6 R equals a NumPy float64 run of the quintic (a, b, c) iteration; its
    singular values lie in [0.6, 1.3], and the SVD variant is exactly orthonormal."""
    R = torch.randn(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = R.numpy().copy()
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(5):
        a = x @ x.T
        x = 3.4445 * x + (-4.7750 * a + 2.0315 * a @ a) @ x
    out = newton_schulz5(R)
    np.testing.assert_allclose(out.numpy(), x, atol=1e-5)
    sv = torch.linalg.svdvals(out)
    assert float(sv.min()) > 0.6 and float(sv.max()) < 1.3
    tall = newton_schulz5(R.T)  # rows > cols: transposed in and out
    torch.testing.assert_close(tall, out.T)
    exact = zo_muon.exact_orthogonalise(R)
    torch.testing.assert_close(exact @ exact.T, torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)  # fp32 SVD


# ---------------------------------------------------------------- SubZero


def test_subzero_basis_is_orthonormal_and_direction_has_the_dense_norm():
    """W 12×8, r 2: UᵀU = VᵀV = I; d = √96/2·U·Z·Vᵀ; E‖d‖² = 96 within 4 standard errors of the mean
    (‖d‖² = (mn/r²)·χ²_{r²}: sd = mn·√2/r per draw); 1-D: E‖z‖² = n within 4 standard errors."""
    model = torch.nn.Linear(8, 12)
    method = subzero.build(model, subzero.Args(rank=2), 0)
    d = method.directions
    d.ensure_window(0)
    U, V = d.U[0].double(), d.V[0].double()
    torch.testing.assert_close(U.T @ U, torch.eye(2, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(V.T @ V, torch.eye(2, dtype=torch.float64), atol=1e-6, rtol=0)
    w0 = model.weight.detach().clone()
    d.add_(5, 1.0)
    Z = dict(d.draws(5))[0]
    torch.testing.assert_close(model.weight.detach() - w0, math.sqrt(96) / 2 * d.U[0] @ Z @ d.V[0].T,
                               atol=1e-5, rtol=1e-5)
    draws = 10_000
    sq = torch.tensor([float(d.direction(s, 0).pow(2).sum()) for s in range(draws)])
    assert abs(float(sq.mean()) - 96) < 4 * 96 * math.sqrt(2) / 2 / math.sqrt(draws)
    sq1 = torch.tensor([float(d.direction(s, 1).pow(2).sum()) for s in range(2000)])
    assert abs(float(sq1.mean()) - 12) < 4 * math.sqrt(2 * 12) / math.sqrt(2000)


def test_subzero_gaussian_basis_keeps_the_norm_alignment_in_expectation():
    """basis=gaussian (the paper's ablation): U, V with N(0, 1/rows) entries, so ‖U‖² ≈ ‖V‖² ≈ r; given
    the basis, E_Z‖d‖² = (mn/r²)·‖U‖²·‖V‖² (Z has iid unit entries), checked to 10% over 4000 draws."""
    model = torch.nn.Linear(8, 12, bias=False)
    d = subzero.build(model, subzero.Args(rank=2, basis="gaussian"), 0).directions
    d.ensure_window(0)
    expected = 96 / 4 * float(d.U[0].pow(2).sum()) * float(d.V[0].pow(2).sum())
    sq = torch.tensor([float(d.direction(s, 0).pow(2).sum()) for s in range(4000)])
    assert abs(float(sq.mean()) - expected) < 0.1 * expected
    assert not torch.allclose(d.U[0].T @ d.U[0], torch.eye(2), atol=1e-3)  # not orthonormal


@pytest.mark.parametrize("one_side", [False, True])
def test_subzero_step_matches_the_hand_computed_update(one_side):
    """Quadratic loss: θ_new = θ − lr·c·d, with c = Σh·θ·d (two-sided) or (L(θ+εd) − L(θ))/ε."""
    model = Quadratic()
    before = snapshot(model)
    lr, eps = 1e-2, 1e-3
    method = subzero.build(model, subzero.Args(lr=lr, eps=eps, rank=2, one_side=one_side), 0)
    method.step(model)
    (seed,) = step_seeds(0, 1)
    dW, db = method.directions.direction(seed, 0), method.directions.direction(seed, 1)
    hW, hb = model.G.abs(), model.g.abs()

    def loss(W, b):
        return float(0.5 * (hW * W ** 2).sum() + 0.5 * (hb * b ** 2).sum())

    W0, b0 = before["W"], before["b"]
    if one_side:
        c = (loss(W0 + eps * dW, b0 + eps * db) - loss(W0, b0)) / eps
    else:
        c = float((hW * W0 * dW).sum() + (hb * b0 * db).sum())
    torch.testing.assert_close(model.W.detach(), W0 - lr * c * dW, atol=1e-10, rtol=0)
    torch.testing.assert_close(model.b.detach(), b0 - lr * c * db, atol=1e-10, rtol=0)


def test_subzero_basis_is_fixed_inside_a_window_and_redrawn_at_its_boundary():
    """T₀ = 3: U is identical at steps 0–2 and differs at step 3; at step 4 the stored U equals the
    basis regenerated from (⌊4/3⌋, tensor index)."""
    model = Linear()
    method = subzero.build(model, subzero.Args(lr=1e-3, rank=2, refresh=3), 0)
    seen = []
    for _ in range(5):
        method.step(model)
        seen.append(method.directions.U[0].clone())
    assert [torch.equal(seen[i], seen[i + 1]) for i in range(4)] == [True, True, False, True]
    U, V = method.directions.bases(4 // 3, 0)
    assert torch.equal(U, method.directions.U[0]) and torch.equal(V, method.directions.V[0])


# ---------------------------------------------------------------- ZO-Muon


def muon_expected(model, before, seeds, Ps_perturb, P_update, lr, eps, lr_1d, draw_p_first, orthogonalise=None):
    """§4.2 by hand on the linear loss: c_i = (L(θ+ε(P_i·u_i, z_i)) − L(θ))/ε, R = mean c_i·u_i,
    W ← W − lr·P·NS5(R), b ← b − lr_1d·mean c_i·z_i."""
    m, n = model.W.shape
    r = P_update.shape[1]
    us, zs, cs = [], [], []
    for i, s in enumerate(seeds):
        gen = torch.Generator().manual_seed(s)
        if draw_p_first:
            torch.randn(m, r, generator=gen, dtype=torch.float32)  # the official stream draws P_i first
        u = torch.randn(r, n, generator=gen, dtype=torch.float64)
        z = torch.randn(m, generator=gen, dtype=torch.float64)
        W1, b1 = before["W"] + eps * Ps_perturb[i] @ u, before["b"] + eps * z
        l0 = float((model.G * before["W"]).sum() + (model.g * before["b"]).sum())
        cs.append((float((model.G * W1).sum() + (model.g * b1).sum()) - l0) / eps)
        us.append(u)
        zs.append(z)
    R = sum(c * u for c, u in zip(cs, us)) / len(seeds)
    g1 = sum(c * z for c, z in zip(cs, zs)) / len(seeds)
    return before["W"] - lr * P_update @ (orthogonalise or newton_schulz5)(R), before["b"] - lr_1d * g1


def test_zo_muon_fixed_step_matches_the_hand_computed_update():
    """rng=fixed, W 8×6, r 2, N_q 3: one P for every query; W and b move as §4.2 says, b at the
    official hard-coded 1-D learning rate 1e-7."""
    model = Linear()
    before = snapshot(model)
    lr, eps = 1e-2, 1e-3
    method = zo_muon.build(model, zo_muon.Args(lr=lr, eps=eps, rank=2, queries=3, rng="fixed"), 0)
    method.step(model)
    base = step_seeds(0, 1)[0]
    seeds = [base + i for i in range(3)]
    P = method.queries.P[0]
    W, b = muon_expected(model, before, seeds, [P] * 3, P, lr, eps, 1e-7, draw_p_first=False)
    torch.testing.assert_close(model.W.detach(), W, atol=1e-8, rtol=0)
    torch.testing.assert_close(model.b.detach(), b, atol=1e-14, rtol=0)
    torch.testing.assert_close(P.T @ P, torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize("optimizer", ["sgd", "muon_svd"])
def test_zo_muon_other_optimizers_match_the_hand_computed_update(optimizer):
    """optimizer=sgd applies R itself, muon_svd the exact U·Vᵀ of R's SVD; everything else as §4.2."""
    model = Linear()
    before = snapshot(model)
    method = zo_muon.build(model, zo_muon.Args(lr=1e-2, rank=2, queries=3, rng="fixed", optimizer=optimizer), 0)
    method.step(model)
    base = step_seeds(0, 1)[0]
    P = method.queries.P[0]
    ortho = (lambda R: R) if optimizer == "sgd" else zo_muon.exact_orthogonalise
    W, _ = muon_expected(model, before, [base, base + 1, base + 2], [P] * 3, P, 1e-2, 1e-3, 1e-7, False, ortho)
    torch.testing.assert_close(model.W.detach(), W, atol=1e-8, rtol=0)


def test_zo_muon_two_sided_mode_is_one_central_query():
    """mode=two_sided: c = (L₊ − L₋)/2ε along (P·u, z) of one seed, 2 forwards, logged (L₊ + L₋)/2;
    for a linear loss c = <G, P·u> + <g, z> and W ← W − lr·P·NS5(c·u)."""
    model = Linear()
    before = snapshot(model)
    method = zo_muon.build(model, zo_muon.Args(lr=1e-2, rank=2, rng="fixed", mode="two_sided"), 0)
    calls = []
    logged = method.step(lambda: calls.append(1) or model())
    assert len(calls) == 2 == method.forwards_last_step
    assert logged == pytest.approx(float(model.G.mul(before["W"]).sum() + model.g.mul(before["b"]).sum()), rel=1e-6)
    (base,) = step_seeds(0, 1)
    P = method.queries.P[0]
    W, _ = muon_expected(model, before, [base], [P], P, 1e-2, 1e-3, 1e-7, False)
    torch.testing.assert_close(model.W.detach(), W, atol=1e-8, rtol=0)


def test_zo_muon_official_rng_reproduces_the_refresh_step_pairing_and_fixed_does_not():
    """rng=official at t = 0: query i is measured along its own P_i (drawn first from seed s_i) but the
    update applies the last P to every u_i; the stored P is P_{N_q−1}. rng=fixed uses one P throughout,
    so its step is not the official one."""
    lr, eps, r, q = 1e-2, 1e-3, 2, 3
    model = Linear()
    before = snapshot(model)
    method = zo_muon.build(model, zo_muon.Args(lr=lr, eps=eps, rank=r, queries=q, rng="official"), 0)
    method.step(model)
    base = step_seeds(0, 1)[0]
    seeds = [base + i for i in range(q)]
    Ps = [orthonormal_columns(8, r, torch.Generator().manual_seed(s), torch.device("cpu"), torch.float64, True)
          for s in seeds]
    assert torch.equal(method.queries.P[0], Ps[-1])
    W, b = muon_expected(model, before, seeds, Ps, Ps[-1], lr, eps, 1e-7, draw_p_first=True)
    torch.testing.assert_close(model.W.detach(), W, atol=1e-8, rtol=0)
    torch.testing.assert_close(model.b.detach(), b, atol=1e-14, rtol=0)
    consistent, _ = muon_expected(model, before, seeds, [Ps[-1]] * q, Ps[-1], lr, eps, 1e-7, draw_p_first=True)
    assert not torch.allclose(model.W.detach(), consistent, atol=1e-6)

    fixed_model = Linear()
    zo_muon.build(fixed_model, zo_muon.Args(lr=lr, eps=eps, rank=r, queries=q, rng="fixed"), 0).step(fixed_model)
    assert not torch.allclose(fixed_model.W.detach(), model.W.detach(), atol=1e-6)


def test_zo_muon_official_off_refresh_steps_keeps_p_and_draws_u_first():
    """Off a refresh step (t = 1) the official stream draws only u_i: P_{N_q−1} of step 0 is used throughout."""
    lr, eps, r, q = 1e-2, 1e-3, 2, 3
    model = Linear()
    method = zo_muon.build(model, zo_muon.Args(lr=lr, eps=eps, rank=r, queries=q, refresh=10), 0)
    method.step(model)
    P, after0 = method.queries.P[0].clone(), snapshot(model)
    method.step(model)
    base = step_seeds(0, 2)[1]
    W, b = muon_expected(model, after0, [base + i for i in range(q)], [P] * q, P, lr, eps, 1e-7, draw_p_first=False)
    assert torch.equal(method.queries.P[0], P)
    torch.testing.assert_close(model.W.detach(), W, atol=1e-8, rtol=0)


def test_zo_muon_lr_1d_option_and_restore_exactness():
    """lr_1d=same-as-lr moves 1-D tensors at lr; with lr 0 (and same-as-lr) the query loop restores θ
    to within 1e-7 in fp32, so the step leaves θ unchanged."""
    model = Linear(dtype=torch.float32)
    before = snapshot(model)
    zo_muon.build(model, zo_muon.Args(lr=0.0, lr_1d="same-as-lr", rank=2, queries=3), 0).step(model)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[n], atol=1e-7, rtol=0)
    official, same = Linear(), Linear()
    before = snapshot(official)
    zo_muon.build(official, zo_muon.Args(lr=1e-2, rank=2, queries=3), 0).step(official)
    zo_muon.build(same, zo_muon.Args(lr=1e-2, rank=2, queries=3, lr_1d="same-as-lr"), 0).step(same)
    ratio = (same.b.detach() - before["b"].double()) / (official.b.detach() - before["b"].double())
    torch.testing.assert_close(ratio, torch.full_like(ratio, 1e-2 / 1e-7), rtol=1e-5, atol=0)


# ---------------------------------------------------------------- Sparse-MeZO


class QuadModule(torch.nn.Module):
    """A quadratic loss computed inside the module's own forward, so the hooks see it."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(weight.clone())
        self.h = torch.linspace(0.5, 2.0, weight.numel(), dtype=weight.dtype).view_as(weight)

    def forward(self):
        return 0.5 * (self.h * self.weight ** 2).sum()


KNOWN = torch.tensor([[0.1, -9.0, 3.0, -0.4], [5.0, 0.2, -7.0, 1.5], [-0.3, 8.0, 2.5, -6.0], [4.0, -1.2, 10.0, 0.05]],
                     dtype=torch.float64)  # the 4 smallest by |θ|: 0.05, 0.1, 0.2, −0.3


@pytest.mark.parametrize("impl", ["hooks", "bool-mask"])
def test_sparse_mezo_step_moves_exactly_the_smallest_quarter_as_computed_by_hand(impl):
    """s = 0.75 on a 4×4 tensor: only the 4 smallest |θ| move, by −lr·(L₊ − L₋)/2ε·m⊙z; the other
    12 entries are bit-identical."""
    model = QuadModule(KNOWN)
    lr, eps = 1e-2, 1e-3
    method = sparse_mezo.build(model, sparse_mezo.Args(lr=lr, eps=eps, sparsity=0.75, impl=impl), 0)
    method.step(model)
    (seed,) = step_seeds(0, 1)
    mask = KNOWN.abs() <= 0.3
    assert int(mask.sum()) == 4
    z = torch.randn(4, 4, generator=generator(key_seed(seed, 0), torch.device("cpu")), dtype=torch.float64) * mask
    c = float((model.h * KNOWN * z).sum())  # central difference of a quadratic: exact
    after = model.weight.detach()
    assert torch.equal(after[~mask], KNOWN[~mask])
    torch.testing.assert_close(after, KNOWN - lr * c * z, atol=1e-10, rtol=0)


def test_sparse_mezo_signed_literal_rule_keeps_every_value_below_the_threshold():
    """mask_rule=signed-literal (the pseudocode's θ ≤ h): all negative entries and the small positive
    ones move; with abs only |θ| ≤ h moves. h is the same magnitude quantile (0.3 here)."""
    model = QuadModule(KNOWN)
    sparse_mezo.build(model, sparse_mezo.Args(lr=1e-2, sparsity=0.75, mask_rule="signed-literal"), 0).step(model)
    moved = model.weight.detach() != KNOWN
    assert torch.equal(moved, KNOWN <= 0.3)


def test_sparse_mezo_recompute_drifts_at_the_threshold_and_the_exact_impls_do_not():
    """impl=recompute re-derives the mask from the perturbed θ: the entry at the threshold (|θ| = h)
    leaves the mask on whichever side moves it outwards, so one ±ε cycle does not return it;
    hooks (by construction) and bool-mask (fp64 rounding only) restore θ."""
    drift = {impl: sparse_mezo.build(QuadModule(KNOWN), sparse_mezo.Args(sparsity=0.75, impl=impl), 0)
             .drift_probe()["restore_drift_max"] for impl in ("hooks", "bool-mask", "recompute")}
    assert drift["hooks"] == 0.0
    assert drift["bool-mask"] < 1e-12
    assert drift["recompute"] > 1e-6


def test_sparse_mezo_hooks_leave_parameters_bit_identical_during_the_perturbed_forwards(tiny, tiny_batch):
    """Within a perturbed forward the loss changes (W_eff is used) but every parameter, tied ones
    included, is bit-identical afterwards, and the modules hold their Parameters again."""
    model, _ = tiny
    method = sparse_mezo.build(model, sparse_mezo.Args(eps=1e-2), 0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        clean = float(classification_loss(model, tiny_batch))
        with method.perturbed(99, 1e-2):
            perturbed = float(classification_loss(model, tiny_batch))
        assert perturbed != clean
        for n, p in model.named_parameters():
            assert torch.equal(p, before[n]), n
            assert isinstance(p, torch.nn.Parameter)
        assert float(classification_loss(model, tiny_batch)) == clean
    assert method.drift_probe()["restore_drift_max"] == 0.0


def test_sparse_mezo_hooks_and_bool_mask_agree_on_a_real_model(tiny_batch):
    """Same seed and thresholds, fp32 tiny Llama: the hooks' forwards see exactly what the in-place
    perturbation writes (every trainable tensor is reached), so losses and updates agree."""
    runs = {}
    for impl in ("hooks", "bool-mask"):
        model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
        method = sparse_mezo.build(model, sparse_mezo.Args(lr=1e-2, eps=1e-2, impl=impl), 3)
        losses = [method.step(lambda: classification_loss(model, tiny_batch)) for _ in range(2)]
        runs[impl] = losses, [p.detach().clone() for p in method.params]
    np.testing.assert_allclose(runs["hooks"][0], runs["bool-mask"][0], rtol=1e-5)
    for a, b in zip(runs["hooks"][1], runs["bool-mask"][1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_sparse_mezo_mask_keeps_the_stated_fraction(tiny):
    """Sparsity 0.8: each masked tensor keeps ⌈0.2·numel⌉ entries (random weights: no ties)."""
    model, _ = tiny
    method = sparse_mezo.build(model, sparse_mezo.Args(), 0)
    checked = 0
    for j, p in enumerate(method.params):
        mask = method.mask(j)
        if p.ndim < 2:
            assert mask is None
            continue
        assert int(mask.sum()) == math.ceil(0.2 * p.numel())
        checked += 1
    assert checked > 0


# ---------------------------------------------------------------- FZOO


def fzoo_by_hand(model, before, seeds, lr, eps, convention):
    """§1.2 (code) or §1.3 (paper) on the linear loss, with float64 arithmetic."""
    params = [model.W, model.b]
    us = [list(rademacher_directions(params, s)) for s in seeds]
    l0 = float((model.G * before["W"]).sum() + (model.g * before["b"]).sum())
    ls = [float((model.G * (before["W"] + eps * u[0])).sum() + (model.g * (before["b"] + eps * u[1])).sum())
          for u in us]
    n = len(seeds)
    if convention == "code":
        sigma = float(np.std(ls))
        cs = [(li - l0) / (n * sigma) for li in ls]
    else:
        sigma = float(np.std(ls, ddof=1))
        cs = [(li - l0) / (eps * n) / sigma for li in ls]
    W = before["W"] - lr * sum(c * u[0] for c, u in zip(cs, us))
    b = before["b"] - lr * sum(c * u[1] for c, u in zip(cs, us))
    return W, b


@pytest.mark.parametrize("convention", ["code", "paper"])
@pytest.mark.parametrize("update", ["sequential", "fused"])
@pytest.mark.parametrize("n_dirs", [2, 3])
def test_fzoo_step_matches_the_hand_computed_update(convention, update, n_dirs):
    """Linear loss from θ = 0 (so the fp32 σ is exact to fp32 precision): Δθ as §1.2/§1.3 compute it.
    For N = 2 and the code convention that is −lr·(gᵀu₁·u₁ + gᵀu₂·u₂)/|gᵀu₁ − gᵀu₂|."""
    model = Linear(zero=True)
    before = snapshot(model)
    lr, eps = 1e-2, 1e-2
    method = fzoo.build(model, fzoo.Args(lr=lr, eps=eps, n_dirs=n_dirs, convention=convention, update=update), 0)
    method.step(model)
    W, b = fzoo_by_hand(model, before, step_seeds(0, n_dirs), lr, eps, convention)
    torch.testing.assert_close(model.W.detach(), W, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(model.b.detach(), b, rtol=1e-6, atol=1e-12)


def test_fzoo_code_step_is_invariant_to_eps_and_the_paper_step_scales_as_one_over_eps():
    """Locally linear loss: the code's step does not depend on ε; the paper's scales as 1/ε."""
    deltas = {}
    for convention in ("code", "paper"):
        for eps in (1e-2, 1e-4):
            model = Linear(zero=True)
            fzoo.build(model, fzoo.Args(lr=1e-2, eps=eps, n_dirs=4, convention=convention), 0).step(model)
            deltas[convention, eps] = model.W.detach().clone()
    torch.testing.assert_close(deltas["code", 1e-2], deltas["code", 1e-4], rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(deltas["paper", 1e-4], 100 * deltas["paper", 1e-2], rtol=1e-5, atol=1e-12)


def test_fzoo_constant_loss_gives_a_non_finite_step_unless_sigma_is_floored():
    """σ = 0 (all N losses tie): the official step divides by zero, θ becomes non-finite and the step
    returns nan; with sigma_floor > 0 the step is finite (and zero: every l_i − l₀ is 0)."""
    model = Linear()
    method = fzoo.build(model, fzoo.Args(n_dirs=4), 0)
    assert math.isnan(method.step(lambda: torch.tensor(0.7)))
    assert not torch.isfinite(model.W).all()
    floored = Linear()
    before = snapshot(floored)
    method = fzoo.build(floored, fzoo.Args(n_dirs=4, sigma_floor=1e-8), 0)
    assert method.step(lambda: torch.tensor(0.7)) == pytest.approx(0.7)
    torch.testing.assert_close(floored.W.detach(), before["W"], atol=1e-12, rtol=0)  # only restore rounding
    assert "sigma-floor" in method.variant


def test_fzoo_tied_losses_end_the_cell_as_diverged_and_a_floor_keeps_it_ok():
    """End to end on the tiny Llama: ε = 1e-30 is below every weight's ulp, so every perturbed loss equals
    the base loss and σ = 0;
    the record says diverged with a non-finite-loss event. sigma_floor > 0 finishes ok."""
    cell = expand(load_suite("smoke"), Overrides(methods=["fzoo"]))[0]
    record = execute_cell({"cell": dataclasses.replace(cell, steps=3, args={**cell.args, "eps": 1e-30}).to_dict(),
                           "data_dir": None}, lambda k, d: None)
    assert record["status"] == "diverged"
    assert record["divergence"][-1]["kind"] == "non_finite_loss"
    floored = dataclasses.replace(cell, steps=2, args={**cell.args, "eps": 1e-30, "sigma_floor": 1e-6})
    record = execute_cell({"cell": floored.to_dict(), "data_dir": None}, lambda k, d: None)
    assert record["status"] == "ok"


def test_fzoo_sequential_and_fused_agree_in_fp32_and_the_variant_says_which_ran():
    """Σ_i c_i·u_i in one sweep equals N sweeps to fp32 rounding; each run records its update mode."""
    out = {}
    for update in ("sequential", "fused"):
        model = Linear(dtype=torch.float32)
        method = fzoo.build(model, fzoo.Args(lr=1e-2, n_dirs=4, update=update), 0)
        method.step(model)
        out[update] = model.W.detach().clone()
        assert update in method.variant
    torch.testing.assert_close(out["sequential"], out["fused"], atol=1e-6, rtol=0)


# ---------------------------------------------------------------- BSZO


def test_bszo_posterior_and_step_match_the_hand_computed_kalman_updates():
    """k 2, m 3, v3 one-sided adaptive, linear loss (y_j = gᵀz_j): two axis updates, then the axis of
    larger posterior variance is re-observed from its cached y (no forward): 3 forwards in all, and
    θ_new = θ − lr·(μ₁z₁ + μ₂z₂)."""
    model = Linear()
    before = snapshot(model)
    lr, eps = 1e-3, 1e-4
    method = bszo.build(model, bszo.Args(lr=lr, eps=eps), 0)
    calls = []
    method.step(lambda: calls.append(1) or model())
    assert len(calls) == 3 == method.forwards_last_step
    seeds = step_seeds(0, 2)
    zs = [list(gaussian_directions([model.W, model.b], s)) for s in seeds]
    ys = [float((model.G * z[0]).sum() + (model.g * z[1]).sum()) for z in zs]
    s0 = math.sqrt(model.W.numel() + model.b.numel()) / 1000  # √(n/10⁶)
    mu, var, rho = [0.0, 0.0], [s0 ** 2, s0 ** 2], s0 ** 2

    def observe(j, y, rho):
        r = y - mu[j]
        rho = 0.9 * rho + 0.1 * r ** 2
        sn2 = max(0.1 * s0, math.sqrt(rho)) ** 2
        gain = var[j] / (var[j] + sn2)
        mu[j] += gain * r
        var[j] = var[j] - gain * var[j] + 1e-10
        return rho

    rho = observe(0, ys[0], rho)
    rho = observe(1, ys[1], rho)
    j = int(np.argmax(var))
    rho = observe(j, ys[j], rho)
    np.testing.assert_allclose(method.posterior.mean.numpy(), mu, rtol=1e-5)
    assert method.rho == pytest.approx(rho, rel=1e-5)
    W = before["W"] - lr * (mu[0] * zs[0][0] + mu[1] * zs[1][0])
    torch.testing.assert_close(model.W.detach(), W, atol=1e-9, rtol=0)


def test_bszo_noise_estimate_persists_across_steps_and_two_sided_costs_two_forwards_a_direction():
    """ρ carries over from one step to the next; central differences cost 1 + 2k forwards."""
    model = Linear()
    method = bszo.build(model, bszo.Args(lr=1e-3), 0)
    method.step(model)
    rho1 = method.rho
    method.step(model)
    assert method.rho != rho1
    calls = []
    two = bszo.build(Linear(), bszo.Args(one_sided=False), 0)
    two.step(lambda: calls.append(1) or torch.tensor(1.0))
    assert len(calls) == 5 == two.forwards_last_step
