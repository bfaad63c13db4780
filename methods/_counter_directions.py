"""Dense directions from the counter-based stream (methods/_zgen.py): z_j = z(seed, j, ·) for tensor j.

Same seam as ``_zo.DenseGaussian`` (``add_(seed, scale)``), plus the multi-term pass the fused
and pipelined updates need: ``axpy_([(seed, alphas), ...])`` adds Σ_k alphas_k[j]·z_k to each
tensor j in ONE pass over it (k ≤ 2), with a per-tensor coefficient (weight decay exempts some
tensors). A tensor's index is its position in ``params``; its z does not depend on the others,
so tensors can be visited in any order, or split into shards.
Usage: ``d = CounterDirections(params); d.add_(seed, eps); d.axpy_([(s_t, a), (s_next, [eps] * n)])``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from zobench.methods import _zgen


class CounterDirections:
    generator = _zgen.NAME

    def __init__(self, params: list[torch.Tensor], family: str = "gaussian"):
        if family not in _zgen.FAMILIES:
            raise ValueError(f"unknown direction family {family!r}; known: {', '.join(_zgen.FAMILIES)}")
        self.params, self.family = params, family

    @torch.no_grad()
    def add_(self, seed: int, scale: float) -> None:
        for j, p in enumerate(self.params):
            _zgen.axpy_(p.data, j, [(seed, scale)], family=self.family)

    @torch.no_grad()
    def axpy_(self, terms: Sequence[tuple[int, Sequence[float]]]) -> None:
        """θ_j += Σ_k alphas_k[j]·z_k(seed_k) for every tensor j, one pass per tensor."""
        for j, p in enumerate(self.params):
            live = [(seed, alphas[j]) for seed, alphas in terms if alphas[j] != 0.0]
            if live:
                _zgen.axpy_(p.data, j, live, family=self.family)
