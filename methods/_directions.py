"""Direction families beyond MeZO's dense Gaussian: Rademacher signs, lock-step regeneration of
several seeds, orthonormal low-rank bases keyed by (refresh index, tensor index), Newton–Schulz.

Every draw comes from a private ``torch.Generator``; the global RNG is never touched.
See shared/reference/newer-zo-methods.md §0.1.
Usage: ``for p, zs in lockstep(params, seeds, gaussian_draw): ...``.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Iterator

import torch

Draw = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def key_seed(*parts: int) -> int:
    """A 62-bit seed from a tuple of integers (base seed, refresh index, tensor index, ...).

    Hashing (not ``seed + index``) keeps keys from colliding across neighbouring tuples.
    """
    digest = hashlib.blake2b(repr(tuple(int(p) for p in parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2


def generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def gaussian_draw(p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)


def rademacher_draw(p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """±1 in the parameter's dtype, drawn as FZOO's code does: randint{0,1}·2 − 1."""
    return torch.randint(0, 2, p.shape, generator=gen, device=p.device, dtype=p.dtype).mul_(2).sub_(1)


def seeded_stream(params: Iterable[torch.Tensor], seed: int, draw: Draw) -> Iterator[torch.Tensor]:
    """One draw per tensor from a single stream per device seeded with ``seed`` (the reference's
    order: tensor after tensor, as ``torch.manual_seed(seed)`` followed by per-tensor draws)."""
    gens: dict[torch.device, torch.Generator] = {}
    for p in params:
        gen = gens.get(p.device)
        if gen is None:
            gen = gens[p.device] = generator(seed, p.device)
        yield draw(p, gen)


def rademacher_directions(params: Iterable[torch.Tensor], seed: int) -> Iterator[torch.Tensor]:
    """One ±1 tensor per parameter, identical for the same seed and order."""
    return seeded_stream(params, seed, rademacher_draw)


def lockstep(params: list[torch.Tensor], seeds: list[int], draw: Draw) -> Iterator[tuple[int, list[torch.Tensor]]]:
    """Regenerate several seeds' directions together: for each tensor j, yield (j, [d_1j … d_Nj]).

    N streams advance side by side over the parameter list, so a fused update can combine the
    N directions of one tensor and free them before the next tensor (N tensor-sized temporaries
    at a time, never N copies of the model). Each stream is exactly ``seeded_stream(seed_i)``.
    """
    streams = [seeded_stream(params, s, draw) for s in seeds]
    for j in range(len(params)):
        yield j, [next(s) for s in streams]


def as_matrix(p: torch.Tensor) -> torch.Tensor:
    """A ≥2-D tensor viewed as (rows, everything else), as LOZO and SubZero treat them."""
    return p.view(p.shape[0], -1)


def orthonormal_columns(rows: int, rank: int, gen: torch.Generator, device: torch.device,
                        dtype: torch.dtype, sign_fix: bool) -> torch.Tensor:
    """Q of the QR of an fp32 Gaussian rows×rank matrix, cast to ``dtype``.

    ``sign_fix`` multiplies the columns by sign(diag R), which makes Q Haar-distributed
    (ZO-Muon's sampler does; SubZero's does not, which does not change the estimate).
    """
    a = torch.randn(rows, rank, generator=gen, device=device, dtype=torch.float32)
    q, r = torch.linalg.qr(a)
    if sign_fix:
        q = q * torch.sign(torch.diagonal(r))  # diag R is nonzero with probability 1
    return q.to(dtype)


NS5_COEFFS = (3.4445, -4.7750, 2.0315)  # Muon's quintic (ZO-Muon LowDimTrainer.py:L174–L192)


def newton_schulz5(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """≈ U·Vᵀ of g's SVD by Muon's quintic Newton–Schulz iteration, in g's dtype.

    The singular values of the result land roughly in [0.7, 1.2], not exactly 1 (by design).
    """
    a, b, c = NS5_COEFFS
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / (torch.linalg.matrix_norm(x) + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if g.shape[0] > g.shape[1] else x


def exact_orthogonalise(g: torch.Tensor) -> torch.Tensor:
    """U·Vᵀ from the fp32 SVD of g (ZO-Muon's ``muon_svd``), cast back to g's dtype."""
    u, _, vh = torch.linalg.svd(g.float(), full_matrices=False)
    return (u @ vh).to(g.dtype)
