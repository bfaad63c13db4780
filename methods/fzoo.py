"""FZOO (Dang et al., ICLR 2026): N one-sided Rademacher queries, step normalised by the loss spread.

Follows DKmiyan/FZOO @ d4f8a8b trainer.py:L722–L781 (shared/reference/newer-zo-methods.md §1):
  for i = 1…N: θ+εu_i → l_i, restore;  then l₀ = L(θ)  (the base forward runs last)
  σ = std_pop(l_1…l_N)  (fp32, l₀ excluded);  c_i = (l_i − l₀)/(N·σ);  θ ← θ − lr·Σ_i c_i·u_i
``convention``:
- ``code`` (default, as run): no 1/ε, population std, **no guard**: σ = 0 (all N losses tie, e.g.
  fp16-quantised losses) gives a non-finite step. The parameters become non-finite, as in the
  original, and ``step`` then returns nan so the harness records the divergence at this step.
  ``sigma_floor`` > 0 clamps σ from below (not in the original).
- ``paper``: g = Σ(l_i − l₀)u_i/(εN), σ the unbiased std, θ ← θ − lr·g/σ. Equals the code's step
  × 1/(ε·√(N/(N−1))) for the same lr.
``update``: ``sequential`` (default, the code's N update sweeps, each rounded to the param dtype)
or ``fused`` (one sweep, N directions regenerated in lock step; differs only in fp16/bf16 rounding).
Differences from the original: in-place ``add_`` perturbation, private generators, no dead
``torch.rand`` draws; the LR schedule is constant as the original's override makes it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from zobench.api import Closure, DriftProbed, TrainingPlan, ranged
from zobench.methods._directions import lockstep, rademacher_directions, rademacher_draw
from zobench.methods._zo import draw_step_seed, restore_drift

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-5, gt=0)  # fzoo.sh default (README OPT-13B WSC: 5e-5 with eps 1e-4)
    eps: float = ranged(1e-3, gt=0)  # fzoo.sh default
    n_dirs: int = ranged(8, ge=2)  # --N
    convention: Literal["code", "paper"] = "code"
    sigma: Literal["auto", "population", "unbiased"] = "auto"  # auto: population (code) / unbiased (paper)
    update: Literal["sequential", "fused"] = "sequential"
    sigma_floor: float = ranged(0.0, ge=0)  # 0: the original (no guard)


def coefficients(losses: list[float], base: float, args: Args) -> torch.Tensor:
    """The per-direction step coefficients c_i (θ ← θ − lr·Σ c_i u_i), in fp32 as the code does.

    With σ = 0 and no floor the result is nan or ±inf (0/0 or x/0): that is the original's behaviour.
    """
    n = len(losses)
    l = torch.tensor(losses, dtype=torch.float32)
    unbiased = args.sigma == "unbiased" or (args.sigma == "auto" and args.convention == "paper")
    sigma = l.std(unbiased=unbiased) if n > 1 else torch.zeros((), dtype=torch.float32)
    sigma = torch.clamp(sigma, min=args.sigma_floor)
    diffs = l - base
    if args.convention == "paper":
        return diffs / (args.eps * n) / sigma
    return diffs / (n * sigma)


class FZOO(DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        if args.n_dirs < 2:
            raise ValueError("n_dirs must be >= 2: the step is normalised by the spread of N losses")
        if args.sigma_floor < 0:
            raise ValueError("sigma_floor must be >= 0")
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.args = args
        self.seed_source = torch.Generator().manual_seed(seed)
        self.forwards_last_step = args.n_dirs + 1
        sigma = args.sigma if args.sigma != "auto" else ("unbiased" if args.convention == "paper" else "population")
        self.details: dict = {}  # nothing beyond the variant
        self.variant = f"{args.convention}+{sigma}-std+{args.update}+rademacher+N{args.n_dirs}" + \
            (f"+sigma-floor{args.sigma_floor:g}" if args.sigma_floor else "")
        self.last_coefficients: torch.Tensor | None = None
        model.eval()

    @torch.no_grad()
    def add_(self, seed: int, scale: float) -> None:
        for p, u in zip(self.params, rademacher_directions(self.params, seed)):
            p.add_(u, alpha=scale)

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        seeds = [draw_step_seed(self.seed_source) for _ in range(self.args.n_dirs)]
        losses = []
        for seed in seeds:
            self.add_(seed, self.args.eps)
            losses.append(closure().item())
            self.add_(seed, -self.args.eps)
        base = closure().item()
        coeffs = coefficients(losses, base, self.args)
        self.last_coefficients = coeffs
        self.update(seeds, coeffs)
        # A non-finite step has made θ non-finite: report it now, not one step later.
        return base if bool(torch.isfinite(coeffs).all()) else math.nan

    @torch.no_grad()
    def update(self, seeds: list[int], coeffs: torch.Tensor) -> None:
        lr = self.args.lr
        if self.args.update == "sequential":
            for seed, c in zip(seeds, coeffs.tolist()):
                self.add_(seed, -lr * c)
            return
        for j, us in lockstep(self.params, seeds, rademacher_draw):
            total = torch.zeros_like(self.params[j])
            for u, c in zip(us, coeffs.tolist()):
                total.add_(u, alpha=c)
            self.params[j].add_(total, alpha=-lr)

    def drift_probe(self, seed: int = 12345) -> dict[str, float]:
        """Restore drift of one +ε, −ε query (FZOO's one-sided cycle) on the real parameters."""
        def cycle() -> None:
            self.add_(seed, self.args.eps)
            self.add_(seed, -self.args.eps)

        return restore_drift(self.params, cycle)


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> FZOO:
    return FZOO(model, args, seed)
