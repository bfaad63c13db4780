"""SubZero (Yu et al., ICCV 2025): two-point ZO in lazily refreshed orthonormal low-rank subspaces.

Follows zimingyy/SubZero @ cf6effd large_models/trainer.py:L744–L1007 (shared/reference/
newer-zo-methods.md §3). Per matrix W (m×n): d = √(mn)/r·U·Z·Vᵀ with U (m×r), V (n×r)
column-orthonormal (Q of a Gaussian's QR), refreshed every T₀ steps, and Z ~ N(0, I_{r×r})
drawn from the step seed; 1-D tensors get dense Gaussian z. E‖d‖² = mn, as a dense z's.
  θ+εd → L₊;  θ−εd → L₋;  c = (L₊ − L₋)/2ε;  θ ← θ − lr·c·d   (plain SGD, momentum 0)
Differences from the original, all recorded in ``variant``:
- U, V come from a private generator keyed by (refresh index, tensor index), not from the global
  RNG state left by the previous step (quirk Q1), so they can be regenerated and checked;
- perturbation and update are in place with ``addmm_`` (U·Z is m×r: no m×n temporary), and the
  last restore is fused into the update (one pass fewer, same maths);
- the rank is capped at min(m, n) for small matrices (the original's QR would give a narrower Q);
- ``basis: gaussian`` (the paper's Table 5 ablation) uses U, V with N(0, 1/rows) entries.
Weight decay is ignored, as in the original (its SGD is built without it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from zobench.api import Closure, DriftProbed, TrainingPlan, ranged
from zobench.methods._directions import as_matrix, generator, key_seed, orthonormal_columns
from zobench.methods._zo import draw_step_seed, restore_drift, two_point

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-7, gt=0)  # ZO-Muon's SubZero baseline script (OPT-13B FT)
    eps: float = ranged(1e-3, gt=0)  # run.py zo_eps
    rank: int = ranged(24, ge=1)  # README (OPT-1.3B); run.py default 8, ZO-Muon's script 48
    refresh: int = ranged(1000, ge=1)  # T₀ = update_interval (README and paper default F)
    basis: Literal["orthonormal", "gaussian"] = "orthonormal"
    one_side: bool = False  # perturbation_mode=one_side: (L₊ − L₀)/ε


class SubspaceDirections:
    """θ ← θ + scale·d(seed): √(mn)/r·U·Z·Vᵀ for matrices, dense Gaussian z for 1-D tensors."""

    def __init__(self, params: list[torch.Tensor], rank: int, basis: str, basis_seed: int):
        self.params, self.rank, self.basis, self.basis_seed = params, rank, basis, basis_seed
        self.window: int | None = None
        self.U: list[torch.Tensor | None] = [None] * len(params)
        self.V: list[torch.Tensor | None] = [None] * len(params)

    def ensure_window(self, window: int) -> None:
        """Make U, V those of refresh window ``window`` (no-op inside the current window)."""
        if window != self.window:
            for j in range(len(self.params)):
                self.U[j], self.V[j] = self.bases(window, j)
            self.window = window

    def bases(self, window: int, j: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """U, V of tensor j in refresh window ``window``: regenerable from the key alone."""
        p = self.params[j]
        if p.ndim < 2:
            return None, None
        m, n = as_matrix(p).shape
        r = min(self.rank, m, n)
        gen = generator(key_seed(self.basis_seed, window, j), p.device)
        if self.basis == "gaussian":
            u = torch.randn(m, r, generator=gen, device=p.device, dtype=torch.float32) / math.sqrt(m)
            v = torch.randn(n, r, generator=gen, device=p.device, dtype=torch.float32) / math.sqrt(n)
            return u.to(p.dtype), v.to(p.dtype)
        return (orthonormal_columns(m, r, gen, p.device, p.dtype, sign_fix=False),
                orthonormal_columns(n, r, gen, p.device, p.dtype, sign_fix=False))

    def draws(self, seed: int):
        """(j, Z or z) per tensor, from one stream per device seeded with the step seed."""
        gens: dict[torch.device, torch.Generator] = {}
        for j, p in enumerate(self.params):
            gen = gens.get(p.device)
            if gen is None:
                gen = gens[p.device] = generator(seed, p.device)
            shape = p.shape if p.ndim < 2 else (self.U[j].shape[1],) * 2
            yield j, torch.randn(shape, generator=gen, device=p.device, dtype=p.dtype)

    def scale_of(self, j: int) -> float:
        m, n = as_matrix(self.params[j]).shape
        return math.sqrt(m * n) / self.U[j].shape[1]

    def direction(self, seed: int, j: int) -> torch.Tensor:
        """The full d of tensor j (tests and checks only: training never forms it)."""
        z = dict(self.draws(seed))[j]
        if self.params[j].ndim < 2:
            return z
        return (self.scale_of(j) * self.U[j] @ z @ self.V[j].T).view_as(self.params[j])

    @torch.no_grad()
    def add_(self, seed: int, scale: float) -> None:
        for j, z in self.draws(seed):
            p = self.params[j]
            if p.ndim < 2:
                p.add_(z, alpha=scale)
            else:
                as_matrix(p).addmm_(self.U[j] @ z, self.V[j].T, alpha=scale * self.scale_of(j))


class SubZero(DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        if args.rank < 1 or args.refresh < 1:
            raise ValueError("rank and refresh must be >= 1")
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.args = args
        self.seed_source = torch.Generator().manual_seed(seed)
        # Bases are drawn on first use (step or drift probe), so the method can be built on the
        # meta device for the pre-flight check.
        self.directions = SubspaceDirections(self.params, args.rank, args.basis, key_seed(seed, 1))
        self.forwards_last_step = 2
        self.details: dict = {}  # nothing beyond the variant
        self.variant = f"{args.basis}-basis-keyed+r{args.rank}+T{args.refresh}+" + \
            ("one-side" if args.one_side else "two-side+fused-restore-update")
        self.t = 0
        model.eval()

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        self.directions.ensure_window(self.t // self.args.refresh)
        seed = draw_step_seed(self.seed_source)
        eps, d = self.args.eps, self.directions
        if self.args.one_side:
            base = closure().item()
            d.add_(seed, eps)
            loss = closure().item()
            d.add_(seed, -eps)
            c = (loss - base) / eps
            d.add_(seed, -self.args.lr * c)
        else:
            (loss,), (c,) = two_point(d, closure, [seed], eps, keep_last_perturbed=True)
            d.add_(seed, eps - self.args.lr * c)  # θ−εd + εd − lr·c·d: restore and update in one pass
        self.t += 1
        return loss

    def drift_probe(self, seed: int = 12345) -> dict[str, float]:
        self.directions.ensure_window(self.t // self.args.refresh)

        def cycle() -> None:
            for scale in (self.args.eps, -2 * self.args.eps, self.args.eps):
                self.directions.add_(seed, scale)

        return restore_drift(self.params, cycle)


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> SubZero:
    return SubZero(model, args, seed)
