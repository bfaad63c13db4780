"""BSZO (Feng & Huang, 2026): k Gaussian directions fused by a Kalman posterior over their coefficients.

Follows AeonianQuill/BSZO @ 63d87bf bszo_optimizer_v3.py:L16–L343 with the README setting
(shared/reference/newer-zo-methods.md §8): k = 2 directions, m = 3 observations, adaptive,
one-sided, lr 1e-7, ε 1e-4. Per step:
  seeds s_1…s_k;  μ = 0, Σ = σ_p²·I;  f₀ = L(θ)
  for a < m: a < k (or not adaptive): d = e_{a mod k}, y = (L(θ+εz_j) − f₀)/ε (one forward, cached);
             a ≥ k and adaptive (v3): d = the axis of |top eigenvector of Σ|, y = its *cached* value
             (no forward: the original re-ingests an old observation as a new one)
             Kalman: r = y − dᵀμ;  ρ ← 0.9ρ + 0.1r²;  σ_n = max(0.1σ_n⁰, √ρ);  K = Σd/(dᵀΣd + σ_n²)
                     μ += K·r;  Σ ← sym(Σ − K·dᵀΣ) + 1e-10·I
  θ ← θ − lr·Σ_j μ_j·z_j  (one in-place pass per j with |μ_j| > 1e-10)
σ_p = σ_n⁰ = √(n/10⁶) with n the trainable element count ("auto"); ρ persists across steps,
initialised to σ_n⁰². The posterior is float64 on the CPU (k×k), as the original's NumPy state.
Differences: private generators (the original draws seeds from NumPy's global RNG).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from zobench.api import Closure, DriftProbed, TrainingPlan, ranged
from zobench.methods._zo import draw_step_seed, perturb_, restore_drift

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-7, gt=0)  # README
    eps: float = ranged(1e-4, gt=0)  # README
    subspace_dim: int = ranged(2, ge=1)  # k (README; CLI default 1)
    num_samples: int = ranged(3, ge=1)  # m (README; CLI default 4)
    adaptive: bool = True
    one_sided: bool = True  # README; CLI default is two-sided
    noise_ema: float = ranged(0.1, gt=0, le=1)  # β


@dataclasses.dataclass
class Posterior:
    """Gaussian posterior N(μ, Σ) over the k directional derivatives, with the adaptive noise EMA."""

    mean: torch.Tensor
    cov: torch.Tensor

    def observe(self, axis: int, y: float, rho: float, sigma_floor: float, beta: float) -> float:
        """One Kalman update along the unit axis ``axis``; returns the new noise EMA ρ."""
        k = self.mean.numel()
        d = torch.zeros(k, dtype=torch.float64)
        d[axis] = 1.0
        residual = y - float(d @ self.mean)
        rho = (1 - beta) * rho + beta * residual ** 2
        sigma_n = max(sigma_floor, math.sqrt(rho))
        cov_d = self.cov @ d
        gain = cov_d / (float(d @ cov_d) + sigma_n ** 2)
        self.mean = self.mean + gain * residual
        cov = self.cov - torch.outer(gain, d @ self.cov)
        self.cov = (cov + cov.T) / 2 + 1e-10 * torch.eye(k, dtype=torch.float64)
        return rho

    def most_uncertain_axis(self) -> int:
        """argmax |top eigenvector of Σ| (Σ stays diagonal: the axis of largest variance)."""
        _, vectors = torch.linalg.eigh(self.cov)
        return int(vectors[:, -1].abs().argmax())


class BSZO(DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        if args.subspace_dim < 1 or args.num_samples < 1:
            raise ValueError("subspace_dim and num_samples must be >= 1")
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.args = args
        self.seed_source = torch.Generator().manual_seed(seed)
        n = sum(p.numel() for p in self.params)
        self.sigma_prior = self.sigma_noise0 = math.sqrt(n / 1e6)  # "auto"
        self.rho = self.sigma_noise0 ** 2
        fresh = min(args.subspace_dim, args.num_samples) if args.adaptive else args.num_samples
        self.forwards_last_step = 1 + fresh * (1 if args.one_sided else 2)
        self.details: dict = {}  # nothing beyond the variant
        self.variant = f"v3+{'one' if args.one_sided else 'two'}-sided+{'adaptive' if args.adaptive else 'cyclic'}" + \
            f"+k{args.subspace_dim}+m{args.num_samples}"
        self.posterior: Posterior | None = None
        model.eval()

    @torch.no_grad()
    def derivative(self, closure: Closure, seed: int, base: float) -> float:
        """One directional derivative along z(seed): one-sided (L(θ+εz) − f₀)/ε or central."""
        eps = self.args.eps
        perturb_(self.params, seed, eps)
        plus = closure().item()
        if self.args.one_sided:
            perturb_(self.params, seed, -eps)
            return (plus - base) / eps
        perturb_(self.params, seed, -2 * eps)
        minus = closure().item()
        perturb_(self.params, seed, eps)
        return (plus - minus) / (2 * eps)

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        k, a = self.args.subspace_dim, self.args
        seeds = [draw_step_seed(self.seed_source) for _ in range(k)]
        post = self.posterior = Posterior(torch.zeros(k, dtype=torch.float64),
                                          self.sigma_prior ** 2 * torch.eye(k, dtype=torch.float64))
        base = closure().item()
        cached: dict[int, float] = {}
        for sample in range(a.num_samples):
            if a.adaptive and sample >= k:
                axis = post.most_uncertain_axis()
                y = cached[axis]  # v3: no new forward
            else:
                axis = sample % k
                y = cached[axis] = self.derivative(closure, seeds[axis], base)
            self.rho = post.observe(axis, y, self.rho, 0.1 * self.sigma_noise0, a.noise_ema)
        for seed, mu in zip(seeds, post.mean.tolist()):
            if abs(mu) > 1e-10:
                perturb_(self.params, seed, -a.lr * mu)
        return base

    def drift_probe(self, seed: int = 12345) -> dict[str, float]:
        def cycle() -> None:
            perturb_(self.params, seed, self.args.eps)
            perturb_(self.params, seed, -self.args.eps)

        return restore_drift(self.params, cycle)


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> BSZO:
    return BSZO(model, args, seed)
