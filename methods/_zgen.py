"""One counter-based generator for ZO directions: z(seed, tensor index, element offset), the same on every device.

Element e of tensor j under seed s is a pure function of (s, j, stream, e): Philox4x32-10 with
key = s (64 bits) and counter = (e // 4 as 64 bits, j, stream) gives four uint32 words, which
become the four elements 4·(e//4) … 4·(e//4)+3. So z does not depend on the launch grid, the
number of threads, the chunking, or how a tensor is split into shards (a shard passes its
global element ``offset``). This fixes the seeded ``torch.randn`` trap, whose CUDA values
change with the GPU's SM count (shared/reference/scale-out-and-kernels.md §2.2).

Families (the direction seam, one keyed stream): ``gaussian`` maps word pairs to two normals
by Box–Muller; ``rademacher`` maps each word's top bit to ±1.

Why the Gaussian transform is written out here rather than taken from a library: Triton's
``tl.randn`` and the CPU math libraries compute log/sin/cos with different approximations
(GPU ``log.approx``/``sin.approx``, numpy's SIMD routines, glibc), so their normals differ in
the last bits. This module's transform uses only IEEE-exact operations (+, −, ×, ÷, √, fma,
integer and bit operations) on float32, so the C++ CPU kernel (methods/_zgen_cpu.py), the
Triton kernel (methods/_zgen_triton.py) and the Triton interpreter give identical bits. The
constants below are the single source for both kernels.

The one operation callers use: ``axpy_(p, tensor_index, [(seed, c), ...])`` does
p += Σ_k c_k·z_k in place (k ≤ 2: one pass serves perturb, restore, update, and a pipelined
restore+update+next perturbation), in p's dtype with fp32 arithmetic; z is never stored.
Usage: ``axpy_(p, 3, [(seed, eps)])``; ``fill(out, seed, 3)`` materialises z (tests, low-rank U).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

NAME = "counter-philox"
FAMILIES = {"gaussian": 0, "rademacher": 1}
MAX_TERMS = 2


def f32(x: float) -> float:
    """x rounded to float32 (and back to a Python float, which holds it exactly)."""
    return float(np.float32(x))


# ln(m) for m in [√½, √2]: s = (m−1)/(m+1), ln m = s·(2 + 2s²/3 + 2s⁴/5 + …), |s| ≤ 0.172.
LOG_COEFFS = [f32(2 / (2 * i + 1)) for i in range(7)]  # 2, 2/3, …, 2/13 (L0 … L6)
LN2_HI = 0.693145751953125  # few mantissa bits: k·LN2_HI is exact for |k| ≤ 24
LN2_LO = f32(math.log(2) - LN2_HI)
SQRT2 = f32(math.sqrt(2))
HALF_PI = f32(math.pi / 2)
# sin a = a + a³·Σ S_i a^{2i}, cos a = 1 + a²·Σ C_i a^{2i}, a in [0, π/2) (Taylor, error < 1e-8).
SIN_COEFFS = [f32((-1) ** (i + 1) / math.factorial(2 * i + 3)) for i in range(6)]  # −1/3! … 1/13!
COS_COEFFS = [f32((-1) ** (i + 1) / math.factorial(2 * i + 2)) for i in range(7)]  # −1/2! … −1/14!
TWO_M24 = 2.0**-24
TWO_M22 = 2.0**-22


def _check(p: torch.Tensor, terms: Sequence[tuple[int, float]], family: str) -> None:
    if not 1 <= len(terms) <= MAX_TERMS:
        raise ValueError(f"axpy_ takes 1 to {MAX_TERMS} (seed, coefficient) terms, got {len(terms)}")
    if family not in FAMILIES:
        raise ValueError(f"unknown direction family {family!r}; known: {', '.join(FAMILIES)}")
    if not p.is_contiguous():
        raise ValueError("axpy_ needs a contiguous tensor (its elements are keyed by their offset)")


@torch.no_grad()
def axpy_(p: torch.Tensor, tensor_index: int, terms: Sequence[tuple[int, float]], offset: int = 0,
          family: str = "gaussian", stream: int = 0, backend: str = "auto", chunk: int = 0) -> torch.Tensor:
    """In place: p += Σ_k c_k·z(seed_k, tensor_index, stream, offset + i) for each element i of p.

    ``offset`` is p's first element in the whole tensor (a shard's start); ``backend`` is
    ``auto`` (Triton on CUDA, C++ on CPU), ``cpu`` or ``triton`` (tests run the latter under
    TRITON_INTERPRET=1 on CPU tensors); ``chunk`` (CPU) is the number of counters per task, 0
    for the default: it changes only the work split, never the values.
    """
    _check(p, terms, family)
    if p.numel() == 0:
        return p
    seeds = [int(s) % 2**64 for s, _ in terms]
    coeffs = [float(c) for _, c in terms]
    if backend == "triton" or (backend == "auto" and p.device.type == "cuda"):
        from zobench.methods import _zgen_triton

        _zgen_triton.axpy_(p, tensor_index, seeds, coeffs, offset, FAMILIES[family], stream)
    else:
        from zobench.methods import _zgen_cpu

        _zgen_cpu.axpy_(p, tensor_index, seeds, coeffs, offset, FAMILIES[family], stream, chunk)
    return p


@torch.no_grad()
def fill(out: torch.Tensor, seed: int, tensor_index: int, offset: int = 0, family: str = "gaussian",
         stream: int = 0, backend: str = "auto", chunk: int = 0) -> torch.Tensor:
    """out ← z(seed, tensor_index, stream, offset + i): 0 + 1·z rounds to z exactly (then to out's dtype)."""
    out.zero_()
    return axpy_(out, tensor_index, [(seed, 1.0)], offset, family, stream, backend, chunk)


def draw(shape: Sequence[int], seed: int, tensor_index: int, dtype: torch.dtype = torch.float32,
         device: torch.device | str = "cpu", family: str = "gaussian", stream: int = 0) -> torch.Tensor:
    """A new tensor of z values (for small factors such as LOZO's U; dense passes use ``axpy_``)."""
    return fill(torch.empty(tuple(shape), dtype=dtype, device=device), seed, tensor_index, 0, family, stream)
