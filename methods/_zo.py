"""Seeded Gaussian directions for zeroth-order methods: the MeZO seed trick as plain functions.

A direction z is never stored. It is regenerated from a step seed whenever it is
needed (perturb, restore, update), so a ZO step keeps only (seed, scalar) pairs.
Usage: ``perturb_(params, seed, +eps)``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch


def gaussian_directions(params: Iterable[torch.Tensor], seed: int) -> Iterator[torch.Tensor]:
    """Yield one standard-normal tensor per parameter, identical for the same seed and order.

    Each device gets its own ``torch.Generator`` seeded with ``seed``; the global RNG is
    never touched (MeZO's code reseeds the global RNG every call, which also reseeds
    dropout and data shuffling). z has the parameter's dtype, as in the reference.
    """
    generators: dict[torch.device, torch.Generator] = {}
    for p in params:
        gen = generators.get(p.device)
        if gen is None:
            gen = torch.Generator(device=p.device)
            gen.manual_seed(seed)
            generators[p.device] = gen
        yield torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)


@torch.no_grad()
def perturb_(params: list[torch.Tensor], seed: int, scale: float) -> None:
    """In place: θ ← θ + scale·z(seed). Only one z-sized temporary is alive at a time."""
    for p, z in zip(params, gaussian_directions(params, seed)):
        p.add_(z, alpha=scale)


def draw_step_seed(seed_source: torch.Generator) -> int:
    """A fresh step seed from the method's own generator (reproducible from the cell seed)."""
    return int(torch.randint(0, 2**62, (1,), generator=seed_source).item())
