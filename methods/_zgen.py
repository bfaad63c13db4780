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
Triton kernel (methods/_zgen_triton.py) and the Triton interpreter give identical bits. Its
constants (methods/_zgen_constants.py) are the single source for both kernels.

The one operation callers use: ``axpy_(p, tensor_index, [(seed, c), ...])`` does
p += Σ_k c_k·z_k in place (k ≤ 2: one pass serves perturb, restore, update, and a pipelined
restore+update+next perturbation), in p's dtype with fp32 arithmetic; z is never stored.
Usage: ``axpy_(p, 3, [(seed, eps)])``; ``fill(out, seed, 3)`` materialises z (tests, low-rank U).
"""

from __future__ import annotations

from typing import Sequence

import torch

# The transform's constants live in a leaf module that both kernels import (no import circle);
# they stay readable from here.
from zobench.methods._zgen_constants import (COS_COEFFS, HALF_PI, LN2_HI, LN2_LO, LOG_COEFFS,  # noqa: F401
                                             SIN_COEFFS, SQRT2, TWO_M22, TWO_M24, f32)

NAME = "counter-philox"
FAMILIES = {"gaussian": 0, "rademacher": 1}
MAX_TERMS = 2


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
