"""LOZO and LOZO-M follow the paper and the official code, including the official RNG quirk on request."""

from __future__ import annotations

import pytest
import torch

from zobench.methods import lozo, lozo_m
from zobench.methods._zo import draw_step_seed


class Linear(torch.nn.Module):
    """f(W) = <G, W>: central differences are exact, so c = <G, U·Vᵀ> for the perturbation's U."""

    def __init__(self, m: int = 5, n: int = 7):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.W = torch.nn.Parameter(torch.randn(m, n, generator=gen, dtype=torch.float64))
        self.G = torch.randn(m, n, generator=gen, dtype=torch.float64)

    def loss(self):
        return (self.G * self.W).sum()


def step_seeds(seed: int, n: int) -> list[int]:
    source = torch.Generator().manual_seed(seed)
    return [draw_step_seed(source) for _ in range(n)]


def test_perturbation_has_rank_at_most_r():
    model = torch.nn.Linear(40, 30, bias=True)
    method = lozo.build(model, lozo.Args(rank=3), 0)
    method.directions.refresh_v()
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    method.directions.add_(123, 1.0)
    assert torch.linalg.matrix_rank(model.weight.detach() - w0) <= 3
    assert torch.linalg.matrix_rank((model.bias.detach() - b0).unsqueeze(0)) == 1  # 1-D: dense z


def test_v_is_fixed_within_a_window_and_redrawn_at_its_boundary():
    model = Linear()
    method = lozo.build(model, lozo.Args(rank=2, interval=3, lr=1e-3), 0)
    seen = []
    for _ in range(7):
        method.step(model.loss)
        seen.append(method.directions.V[0].clone())
    same = [torch.equal(seen[i], seen[i + 1]) for i in range(6)]
    assert same == [True, True, False, True, True, False]


def expected_step(model: Linear, w0: torch.Tensor, V: torch.Tensor, U_perturb: torch.Tensor, U_update: torch.Tensor, lr: float):
    c = float((model.G * (U_perturb @ V.T)).sum())
    return w0 - lr * c * (U_update @ V.T)


def test_fixed_rng_updates_along_the_perturbation_also_on_refresh_steps():
    """rng=fixed: on the refresh step (t = 0) the update uses the very U the perturbation used."""
    model = Linear()
    w0 = model.W.detach().clone()
    method = lozo.build(model, lozo.Args(rank=2, interval=50, lr=1e-2), 0)
    method.step(model.loss)
    (seed,) = step_seeds(0, 1)
    U = method.directions.u_vectors(seed, "perturb")[0]
    assert torch.equal(U, method.directions.u_vectors(seed, "update")[0])
    torch.testing.assert_close(model.W.detach(), expected_step(model, w0, method.directions.V[0], U, U, 1e-2),
                               rtol=0, atol=1e-12)


def test_official_rng_reproduces_the_refresh_step_mismatch():
    """rng=official: one stream per step; on a refresh step the perturbation draws V then U, the
    update draws only U, so the update's U is V's draw position, not the perturbation's U."""
    model = Linear()
    m, n, r, lr = 5, 7, 2, 1e-2
    w0 = model.W.detach().clone()
    method = lozo.build(model, lozo.Args(rank=r, interval=50, lr=lr, rng="official", generator="torch"), 0)
    method.step(model.loss)
    seed0, seed1 = step_seeds(0, 2)
    gen = torch.Generator().manual_seed(seed0)
    V = torch.randn(n, r, generator=gen, dtype=torch.float64)
    U_perturb = torch.randn(m, r, generator=gen, dtype=torch.float64)
    U_update = torch.randn(m, r, generator=torch.Generator().manual_seed(seed0), dtype=torch.float64)
    assert torch.equal(method.directions.V[0], V)
    after_refresh = model.W.detach().clone()
    torch.testing.assert_close(after_refresh, expected_step(model, w0, V, U_perturb, U_update, lr), rtol=0, atol=1e-12)
    assert not torch.allclose(after_refresh, expected_step(model, w0, V, U_perturb, U_perturb, lr))
    # Off the refresh step both draws start at the stream's head: no mismatch.
    method.step(model.loss)
    U1 = torch.randn(m, r, generator=torch.Generator().manual_seed(seed1), dtype=torch.float64)
    torch.testing.assert_close(model.W.detach(), expected_step(model, after_refresh, V, U1, U1, lr), rtol=0, atol=1e-12)


def test_paper_lr_convention_divides_the_matrix_update_by_r():
    deltas = {}
    for convention in ("code", "paper"):
        model = Linear()
        w0 = model.W.detach().clone()
        lozo.build(model, lozo.Args(rank=4, lr=1e-2, lr_convention=convention), 0).step(model.loss)
        deltas[convention] = model.W.detach() - w0
    torch.testing.assert_close(deltas["paper"], deltas["code"] / 4, rtol=1e-10, atol=0)


def test_reprojection_matches_a_hand_computed_case():
    """N·V_oldᵀ·V_new/n with N = [1 2], V_old = [[1,0],[0,1],[1,1]], V_new = [[2,0],[0,1],[1,0]]:
    V_oldᵀV_new = [[3,0],[1,1]], N·that = [5, 2], divided by n = 3."""
    N = torch.tensor([[1.0, 2.0]])
    V_old = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    V_new = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    torch.testing.assert_close(lozo_m.reproject(N, V_old, V_new), torch.tensor([[5 / 3, 2 / 3]]))


def test_lozo_m_momentum_is_reprojected_when_v_changes():
    """At the refresh step: N ← β·N·V_oldᵀV_new/n + (1−β)·c·U, and W moves by −lr·N·V_newᵀ."""
    model = Linear()
    beta, lr = 0.9, 1e-2
    method = lozo_m.build(model, lozo_m.Args(rank=2, interval=2, lr=lr, beta=beta), 0)
    method.step(model.loss)
    method.step(model.loss)
    N1, V_old, w1 = method.momentum[0].clone(), method.directions.V[0].clone(), model.W.detach().clone()
    method.step(model.loss)  # t = 2: V refreshed
    V_new = method.directions.V[0]
    assert not torch.equal(V_old, V_new)
    seed2 = step_seeds(0, 3)[2]
    U = method.directions.u_vectors(seed2, "perturb")[0]
    c = float((model.G * (U @ V_new.T)).sum())
    N2 = beta * lozo_m.reproject(N1, V_old, V_new) + (1 - beta) * c * U
    torch.testing.assert_close(method.momentum[0], N2, rtol=0, atol=1e-12)
    torch.testing.assert_close(model.W.detach(), w1 - lr * N2 @ V_new.T, rtol=0, atol=1e-12)


def test_counter_generator_draws_u_from_the_keyed_stream_and_official_needs_torch():
    """Default generator: U of tensor j is z(seed, j, stream U) and the 1-D z is z(seed, j, stream z),
    whatever the other tensors are; rng 'official' (torch's single stream) refuses it."""
    from zobench.methods import _zgen

    model = torch.nn.Linear(40, 30, bias=True).double()
    method = lozo.build(model, lozo.Args(rank=3), 0)
    u = method.directions.u_vectors(99, "perturb")
    assert torch.equal(u[0], _zgen.draw((30, 3), 99, 0, torch.float64, stream=lozo.U_STREAM))
    assert torch.equal(u[1], _zgen.draw((30,), 99, 1, torch.float64, stream=lozo.Z_STREAM))
    assert method.variant.endswith("+z-counter-philox")
    with pytest.raises(ValueError):
        lozo.build(torch.nn.Linear(4, 4), lozo.Args(rng="official"), 0)
