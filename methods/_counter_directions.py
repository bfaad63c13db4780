"""Dense directions from the counter-based stream (methods/_zgen.py), keyed by position in one virtual vector.

The trainable tensors, in the order given, are read as one virtual parameter vector: tensor j
starts at element offset o_j = Σ_{i<j} numel_i, and its z is z(seed, 0, o_j + e). So the same
vector split differently (per tensor, or as runs of one flat buffer, methods/_flat.py, or as
shards on several devices) gets the same z for every element.

Same seam as ``_zo.DenseGaussian`` (``add_(seed, scale)``), plus the multi-term pass the fused
and pipelined updates need: ``axpy_([(seed, alphas), ...])`` adds Σ_k alphas_k[j]·z_k to each
tensor j in ONE pass over it (k ≤ 2), with a per-tensor coefficient (weight decay exempts some
tensors).
Usage: ``d = CounterDirections(params); d.add_(seed, eps); d.axpy_([(s_t, a), (s_next, [eps] * n)])``.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import torch

from zobench.methods import _zgen


class CounterDirections:
    generator = _zgen.NAME

    def __init__(self, params: list[torch.Tensor], family: str = "gaussian"):
        if family not in _zgen.FAMILIES:
            raise ValueError(f"unknown direction family {family!r}; known: {', '.join(_zgen.FAMILIES)}")
        self.params, self.family = params, family
        self.offsets = [0, *itertools.accumulate(p.numel() for p in params)][:-1]

    @torch.no_grad()
    def add_(self, seed: int, scale: float) -> None:
        for p, offset in zip(self.params, self.offsets):
            _zgen.axpy_(p.data, 0, [(seed, scale)], offset=offset, family=self.family)

    @torch.no_grad()
    def axpy_(self, terms: Sequence[tuple[int, Sequence[float]]]) -> None:
        """θ_j += Σ_k alphas_k[j]·z_k(seed_k) for every tensor j, one pass per tensor."""
        for j, (p, offset) in enumerate(zip(self.params, self.offsets)):
            live = [(seed, alphas[j]) for seed, alphas in terms if alphas[j] != 0.0]
            if live:
                _zgen.axpy_(p.data, 0, live, offset=offset, family=self.family)
