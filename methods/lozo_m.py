"""LOZO-M: LOZO with momentum kept in factored form (N ∈ R^{m×r} per matrix, not m×n).

Follows optsuite/LOZO medium_models/src/LOZOtrainer.py, which exists only for RoBERTa;
this is a re-implementation that works for any model, decoder LMs included:
- N ← β·N + (1−β)·c·U each step (the first step sets N = c·U, as the original does);
- when V is refreshed, N is first re-projected onto the new subspace:
  N ← β·N·V_oldᵀ·V_new / n + (1−β)·c·U  (E[VᵀV] = n·I, n = the matrix's input size);
- X ← X − lr·(N·Vᵀ + wd·X); 1-D tensors keep a dense momentum buffer.
Extra memory per matrix: (m + n)·r. RNG, lr convention and ν as in ``lozo``.
"""

from __future__ import annotations

import dataclasses

import torch

from zobench.api import TrainingPlan, ranged
from zobench.methods import lozo
from zobench.methods.lozo import LOZO, as_matrix

VERSION = "1"


@dataclasses.dataclass
class Args(lozo.Args):
    beta: float = ranged(0.9, ge=0, lt=1)  # BETA1 in the original scripts


def reproject(N: torch.Tensor, V_old: torch.Tensor, V_new: torch.Tensor) -> torch.Tensor:
    """N·V_oldᵀ·V_new / n, computed as N·(V_oldᵀ·V_new)/n: r×r in the middle, never m×n."""
    return N @ (V_old.T @ V_new) / V_old.shape[0]


class LOZOM(LOZO):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        super().__init__(model, args, seed)
        self.momentum: list[torch.Tensor | None] = [None] * len(self.params)
        self.V_old: list[torch.Tensor | None] = [None] * len(self.params)
        self.variant = "factored-momentum+" + self.variant

    @torch.no_grad()
    def step(self, closure) -> float:
        # Keep the outgoing V for the re-projection before LOZO.step refreshes it.
        if self.t % self.args.interval == 0 and self.t > 0:
            self.V_old = list(self.directions.V)
        return super().step(closure)

    @torch.no_grad()
    def update(self, seeds: list[int], grads: list[float]) -> None:
        lr, beta, q = self.args.lr, self.args.beta, len(seeds)
        refreshed = self.t % self.args.interval == 0 and self.t > 0
        self.apply_weight_decay()
        # c·U averaged over the queries: the step's estimate in factored form.
        estimate: dict[int, torch.Tensor] = {}
        for seed, c in zip(seeds, grads):
            for j, draw in self.directions.draws(seed, "update"):
                estimate[j] = estimate.get(j, 0) + draw * (c / q)
        for j, cu in estimate.items():
            p, N = self.params[j], self.momentum[j]
            if N is None:
                N = cu.clone()  # the original's first step: no (1−β) factor
            else:
                if refreshed and p.ndim >= 2:
                    N = reproject(N, self.V_old[j], self.directions.V[j])
                N = beta * N + (1 - beta) * cu
            self.momentum[j] = N
            if p.ndim < 2:
                p.add_(N, alpha=-lr)
            else:
                as_matrix(p).addmm_(N, self.directions.V[j].T, alpha=-self.matrix_lr())


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> LOZOM:
    return LOZOM(model, args, seed)
