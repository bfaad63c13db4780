"""LOZO (Chen et al., ICLR 2025): zeroth-order SGD with low-rank perturbations U·Vᵀ.

Per matrix X (m×n): X ± ε·U·Vᵀ with U ~ N(0,I)^{m×r} redrawn every step and V ~ N(0,I)^{n×r}
redrawn every ν steps (lazy sampling, kept in memory: Σ n·r values). 1-D tensors get dense
Gaussian z as in MeZO. c = (L₊−L₋)/2ε is one scalar for all layers; X ← X − lr·(c·U·Vᵀ + wd·X).
Follows optsuite/LOZO large_models/LOZOtrainer.py (see shared/reference/lozo-and-newer-zo-methods.md):
- ``lr_convention``: ``code`` (default, as run) folds the paper's 1/r into the learning rate;
  ``paper`` divides the matrix update by r.
- ``rng``: ``fixed`` (default) draws V from its own generator and U from the step seed, so
  the update always uses the perturbation's U. ``official`` reproduces the original's
  single reseeded stream, where on every ν-th step the perturbation draws V then U but the
  update draws only U: the update direction there is not the one c was measured along.
- ``generator``: ``counter-philox`` (default; rng ``fixed`` only) draws U, V and the 1-D z from
  the counter-based stream (methods/_zgen.py) keyed by (seed, tensor, element), the same values
  on every device; ``torch`` is the original's torch.randn (needed for rng ``official``).
Perturbations use ``addmm_`` (no m×n temporary, unlike the original's ``u @ v.T``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import Closure, DriftProbed, TrainingPlan, ranged
from zobench.methods import _zgen
from zobench.methods._zo import LossDtype, draw_step_seed, in_loss_dtype, restore_drift, two_point
from zobench.methods.mezo import uses_decay

VERSION = "2"
# counter-philox streams, one per kind of draw, so U, V and the 1-D z never share values
Z_STREAM, U_STREAM, V_STREAM = 0, 1, 2


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-7, gt=0)  # lozo.sh's hard-coded LR (README grid for OPT {1e-6, 1e-7})
    eps: float = ranged(1e-3, gt=0)
    rank: int = ranged(2, ge=1)
    interval: int = ranged(50, ge=1)  # ν: steps between V refreshes
    weight_decay: float = ranged(0.0, ge=0)
    queries: int = ranged(1, ge=1)
    lr_convention: Literal["code", "paper"] = "code"
    rng: Literal["fixed", "official"] = "fixed"
    generator: Literal["counter-philox", "torch"] = "counter-philox"
    loss_dtype: LossDtype = "fp32"  # model: the loss in the model's dtype (the original's fp16 runs)


def as_matrix(p: torch.Tensor) -> torch.Tensor:
    return p.view(p.shape[0], -1)


class LowRankDirections:
    """θ ← θ + scale·d(seed): U·Vᵀ for matrices, dense z for 1-D tensors."""

    def __init__(self, params: list[torch.Tensor], rank: int, rng: str, v_seed_source: torch.Generator,
                 generator: str = "torch"):
        self.params, self.rank, self.rng, self.generator = params, rank, rng, generator
        self.v_seed_source = v_seed_source
        self.V: list[torch.Tensor | None] = [None] * len(params)
        self.refresh_pending = False  # official mode: this step's perturbation draws V first

    def refresh_v(self) -> None:
        """Draw a new V for every matrix (fixed mode: from V's own generator)."""
        if self.rng == "official":
            self.refresh_pending = True  # drawn from the step stream, as the original does
            return
        seed = draw_step_seed(self.v_seed_source)
        for j, p in enumerate(self.params):
            if p.ndim >= 2 and self.generator == _zgen.NAME:
                self.V[j] = _zgen.draw((as_matrix(p).shape[1], self.rank), seed, j, p.dtype, p.device, stream=V_STREAM)
            elif p.ndim >= 2:
                gen = torch.Generator(device=p.device).manual_seed(seed + j)
                self.V[j] = torch.randn(as_matrix(p).shape[1], self.rank, generator=gen, device=p.device, dtype=p.dtype)

    def draws(self, seed: int, purpose: str):
        """Yield (param index, U or z) for one direction; in official mode also stores V when due."""
        shared = {}
        for j, p in enumerate(self.params):
            if self.generator == _zgen.NAME:  # keyed by (seed, tensor, element): order-independent
                shape = p.shape if p.ndim < 2 else (as_matrix(p).shape[0], self.rank)
                yield j, _zgen.draw(shape, seed, j, p.dtype, p.device, stream=Z_STREAM if p.ndim < 2 else U_STREAM)
                continue
            if self.rng == "official":  # one stream per device, reseeded with the step seed
                gen = shared.get(p.device)
                if gen is None:
                    gen = shared[p.device] = torch.Generator(device=p.device).manual_seed(seed)
            else:  # per tensor and order-independent
                gen = torch.Generator(device=p.device).manual_seed((seed + 7919 * j) % 2**62)
            if p.ndim < 2:
                yield j, torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)
                continue
            m, n = as_matrix(p).shape
            if self.rng == "official" and purpose == "perturb" and self.refresh_pending:
                self.V[j] = torch.randn(n, self.rank, generator=gen, device=p.device, dtype=p.dtype)
            yield j, torch.randn(m, self.rank, generator=gen, device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def add_(self, seed: int, scale: float, purpose: str = "perturb") -> None:
        for j, draw in self.draws(seed, purpose):
            p = self.params[j]
            if p.ndim < 2:
                p.add_(draw, alpha=scale)
            else:
                as_matrix(p).addmm_(draw, self.V[j].T, alpha=scale)

    def u_vectors(self, seed: int, purpose: str) -> dict[int, torch.Tensor]:
        return dict(self.draws(seed, purpose))


class LOZO(DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        if args.rng == "official" and args.queries > 1:
            raise ValueError("rng 'official' reproduces the original's single-query stream; use rng 'fixed' for queries > 1")
        if args.rng == "official" and args.generator != "torch":
            raise ValueError("rng 'official' reproduces the original's torch.randn stream: set generator 'torch'")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self.decay = [uses_decay(n) for n, _ in named]
        self.args = args
        self.seed_source = torch.Generator().manual_seed(seed)
        self.directions = LowRankDirections(self.params, args.rank, args.rng,
                                            torch.Generator().manual_seed(seed + 1), args.generator)
        self.forwards_last_step = 2 * args.queries
        self.variant = f"rng-{args.rng}+lr-{args.lr_convention}" + (f"+q{args.queries}" if args.queries > 1 else "") \
            + ("+loss-in-model-dtype" if args.loss_dtype == "model" else "") + f"+z-{args.generator}"
        self.details = {"generator": args.generator}
        self.t = 0
        model.eval()

    def matrix_lr(self) -> float:
        return self.args.lr / self.args.rank if self.args.lr_convention == "paper" else self.args.lr

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        if self.t % self.args.interval == 0:
            self.directions.refresh_v()
        seeds = [draw_step_seed(self.seed_source) for _ in range(self.args.queries)]
        losses, grads = two_point(self.directions, in_loss_dtype(closure, self.args.loss_dtype), seeds, self.args.eps)
        self.directions.refresh_pending = False  # the update stream never draws V (official quirk)
        self.update(seeds, grads)
        self.t += 1
        return losses[0]

    @torch.no_grad()
    def apply_weight_decay(self) -> None:
        """θ ← θ(1 − lr·wd) for the tensors the reference rule decays."""
        if self.args.weight_decay:
            for p, decay in zip(self.params, self.decay):
                if decay:
                    p.mul_(1 - self.args.lr * self.args.weight_decay)

    @torch.no_grad()
    def update(self, seeds: list[int], grads: list[float]) -> None:
        """X ← X(1 − lr·wd) − lr_X·mean_i(c_i·U_i·Vᵀ); 1-D: θ ← θ(1 − lr·wd) − lr·mean_i(c_i·z_i)."""
        lr, q = self.args.lr, len(seeds)
        self.apply_weight_decay()
        for seed, c in zip(seeds, grads):
            for j, draw in self.directions.draws(seed, "update"):
                p = self.params[j]
                if p.ndim < 2:
                    p.add_(draw, alpha=-lr * c / q)
                else:
                    as_matrix(p).addmm_(draw, self.directions.V[j].T, alpha=-self.matrix_lr() * c / q)

    def drift_probe(self, seed: int = 12345) -> dict[str, float]:
        """Restore drift of one cycle, with a throw-away V so training's V sequence is untouched."""
        d = self.directions
        kept = (list(d.V), d.refresh_pending, d.v_seed_source)
        d.v_seed_source = torch.Generator().manual_seed(seed)
        d.refresh_v()

        def cycle() -> None:
            for scale in (self.args.eps, -2 * self.args.eps, self.args.eps):
                d.add_(seed, scale)

        try:
            return restore_drift(self.params, cycle)
        finally:
            d.V, d.refresh_pending, d.v_seed_source = kept


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> LOZO:
    return LOZO(model, args, seed)
