"""ZO-Muon (Lang et al., 2026): one-sided subspace queries, the r×n estimate orthogonalised by Newton–Schulz.

Follows OPTML-Group/ZO-Muon @ 166a8f3 llm/LowDimTrainer.py:L174–L715 (shared/reference/
newer-zo-methods.md §4). Per matrix W (m×n): P (m×r, Haar-orthonormal, refreshed every ν steps)
and u_i ~ N(0, I_{r×n}); 1-D tensors get dense z_i. Multi-query mode (the README's ZO-Muon):
  L₀ = L(θ);  for i < N_q: θ+εP·u_i → l_i, restore;  c_i = (l_i − L₀)/ε
  W ← W − lr·P·NS5(mean_i c_i·u_i);   1-D: θ ← θ − lr_1d·mean_i c_i·z_i
Query i draws from seed s_i = base + i. ``rng``:
- ``official`` (default): on a refresh step every query re-draws P from its own seed before its
  u_i, so query i is measured along P_i·u_i but the update applies the last query's P to all u_i
  (N_q − 1 of the N_q terms are noise on 1/ν of the steps; quirk Q1);
- ``fixed``: P is drawn once per window from (refresh index, tensor index); u_i from s_i.
``lr_1d``: ``official`` hard-codes 1e-7 for 1-D tensors whatever ``lr`` is (quirk Q3); ``same-as-lr``.
``mode: two_sided`` is the README's "Subspace-MeZO": one (L₊ − L₋)/2ε query, 2 forwards.
Differences from the original, recorded in ``variant``: u_i and z_i are regenerated from their
seeds in lock step (the original stores them; same maths, Q2), perturbations use ``addmm_``
(no m×n temporary), private generators, and the rank is capped at min(m, n).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import Closure, DriftProbed, TrainingPlan, ranged
from zobench.methods._directions import (as_matrix, exact_orthogonalise, generator, key_seed, newton_schulz5,
                                          orthonormal_columns)
from zobench.methods._zo import draw_step_seed, restore_drift
from zobench.methods.mezo import uses_decay

VERSION = "1"
OFFICIAL_LR_1D = 1e-7  # LowDimTrainer.py's hard-coded learning rate for biases and norms


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-2, ge=0)  # README, OPT-13B ZO-Muon
    eps: float = ranged(1e-3, gt=0)
    rank: int = ranged(64, ge=1)
    refresh: int = ranged(100, ge=1)  # ν = STEP_INTERVAL
    queries: int = ranged(4, ge=1)  # N_q = NUM_SAMPLES
    optimizer: Literal["muon", "muon_svd", "sgd"] = "muon"
    mode: Literal["multi_one_sided", "two_sided"] = "multi_one_sided"
    lr_1d: Literal["official", "same-as-lr"] = "official"
    rng: Literal["official", "fixed"] = "official"
    ns_dtype: Literal["param", "fp32"] = "param"  # the original runs NS5 in the param dtype
    weight_decay: float = ranged(0.0, ge=0)  # scripts: HF default 0


class SubspaceQueries:
    """P per matrix (stored) and the draws of one query: P_i on official refresh steps, then u or z."""

    def __init__(self, params: list[torch.Tensor], rank: int, basis_seed: int):
        self.params, self.basis_seed = params, basis_seed
        self.ranks = [min(rank, *as_matrix(p).shape) if p.ndim >= 2 else 0 for p in params]
        self.P: list[torch.Tensor | None] = [None] * len(params)
        self.window: int | None = None

    def haar(self, j: int, gen: torch.Generator) -> torch.Tensor:
        p = self.params[j]
        return orthonormal_columns(as_matrix(p).shape[0], self.ranks[j], gen, p.device, p.dtype, sign_fix=True)

    def refresh_fixed(self, window: int) -> None:
        """rng=fixed: P of every matrix from (refresh index, tensor index), once per window."""
        if window != self.window:
            for j, p in enumerate(self.params):
                if p.ndim >= 2:
                    self.P[j] = self.haar(j, generator(key_seed(self.basis_seed, window, j), p.device))
            self.window = window

    def draws(self, seed: int, p_draw: str):
        """(j, P_j, u or z) for one query, from one stream per device seeded with the query's seed.

        ``p_draw`` (official refresh steps draw P from the query's stream before u):
        ``new``: draw P_j and return it (the caller stores it); ``consume``: draw only the Gaussian
        P_j is made of, to keep the stream aligned, and return the stored P_j; ``none``: no draw.
        """
        gens: dict[torch.device, torch.Generator] = {}
        for j, p in enumerate(self.params):
            gen = gens.get(p.device)
            if gen is None:
                gen = gens[p.device] = generator(seed, p.device)
            if p.ndim < 2:
                yield j, None, torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)
                continue
            m, n = as_matrix(p).shape
            if p_draw == "new":
                P = self.haar(j, gen)
            else:
                if p_draw == "consume":
                    torch.randn(m, self.ranks[j], generator=gen, device=p.device, dtype=torch.float32)
                P = self.P[j]
            yield j, P, torch.randn(self.ranks[j], n, generator=gen, device=p.device, dtype=p.dtype)


class ZOMuon(DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        if args.queries < 1 or args.rank < 1 or args.refresh < 1:
            raise ValueError("queries, rank and refresh must be >= 1")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self.decay = [uses_decay(n) for n, _ in named]
        self.args = args
        self.seed_source = torch.Generator().manual_seed(seed)
        self.queries = SubspaceQueries(self.params, args.rank, key_seed(seed, 1))
        self.n_queries = args.queries if args.mode == "multi_one_sided" else 1
        self.forwards_last_step = args.queries + 1 if args.mode == "multi_one_sided" else 2
        self.details: dict = {}  # nothing beyond the variant
        self.variant = f"{args.mode}+{args.optimizer}+rng-{args.rng}+lr1d-{args.lr_1d}+ns-{args.ns_dtype}" + \
            f"+r{args.rank}+nu{args.refresh}+Nq{self.n_queries}+u-regenerated"
        self.t = 0
        model.eval()

    def refresh_step(self) -> bool:
        return self.t % self.args.refresh == 0

    @torch.no_grad()
    def add_query_(self, seed: int, scale: float, p_draw: str) -> None:
        """θ ← θ + scale·(P·u, z) of one query; with ``p_draw="new"`` the P it draws is stored."""
        for j, P, d in self.queries.draws(seed, p_draw):
            p = self.params[j]
            if P is None:
                p.add_(d, alpha=scale)
            else:
                as_matrix(p).addmm_(P, d, alpha=scale)
                if p_draw == "new":
                    self.queries.P[j] = P

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        official_refresh = self.args.rng == "official" and self.refresh_step()  # t = 0 is a refresh step
        if self.args.rng == "fixed":
            self.queries.refresh_fixed(self.t // self.args.refresh)
        # Official refresh step: the first pass of each query draws (and stores) its own P_i, later
        # passes over the same seed only keep the stream aligned (they would redraw the same P_i).
        first, again = ("new", "consume") if official_refresh else ("none", "none")
        base_seed = draw_step_seed(self.seed_source)
        seeds = [base_seed + i for i in range(self.n_queries)]
        eps = self.args.eps
        if self.args.mode == "two_sided":
            (seed,) = seeds
            self.add_query_(seed, eps, first)
            plus = closure().item()
            self.add_query_(seed, -2 * eps, again)
            minus = closure().item()
            self.add_query_(seed, eps, again)
            coeffs, logged = [(plus - minus) / (2 * eps)], (plus + minus) / 2
        else:
            logged = closure().item()
            coeffs = []
            for seed in seeds:
                self.add_query_(seed, eps, first)
                coeffs.append((closure().item() - logged) / eps)
                self.add_query_(seed, -eps, again)
        self.update(seeds, coeffs, again)
        self.t += 1
        return logged

    def orthogonalise(self, R: torch.Tensor) -> torch.Tensor:
        if self.args.optimizer == "sgd":
            return R
        if self.args.optimizer == "muon_svd":
            return exact_orthogonalise(R)
        if self.args.ns_dtype == "fp32":
            return newton_schulz5(R.float()).to(R.dtype)
        return newton_schulz5(R)

    @torch.no_grad()
    def update(self, seeds: list[int], coeffs: list[float], p_draw: str) -> None:
        """Lock step over the queries' streams: per tensor, R = mean c_i·u_i (or z), then one update.

        On an official refresh step each stream first consumes its P_i draw (the original's stored
        u_i were drawn after it); the update uses the stored P, the last query's.
        """
        lr_1d = OFFICIAL_LR_1D if self.args.lr_1d == "official" else self.args.lr
        wd, q = self.args.weight_decay, len(seeds)
        streams = [self.queries.draws(s, p_draw) for s in seeds]
        for j, p in enumerate(self.params):
            draws = [next(s)[2] for s in streams]
            R = torch.zeros_like(draws[0])
            for d, c in zip(draws, coeffs):
                R.add_(d, alpha=c / q)
            decay = wd if self.decay[j] else 0.0
            if p.ndim < 2:
                p.add_(R + decay * p, alpha=-lr_1d)
                continue
            if decay:
                p.mul_(1 - self.args.lr * decay)
            as_matrix(p).addmm_(self.queries.P[j], self.orthogonalise(R), alpha=-self.args.lr)

    def drift_probe(self, seed: int = 12345) -> dict[str, float]:
        """Restore drift of one +ε, −ε query along a throw-away basis (training's P is untouched)."""
        kept = list(self.queries.P)

        def cycle() -> None:
            self.add_query_(seed, self.args.eps, "new")
            self.add_query_(seed, -self.args.eps, "consume")

        try:
            return restore_drift(self.params, cycle)
        finally:
            self.queries.P = kept


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> ZOMuon:
    return ZOMuon(model, args, seed)
