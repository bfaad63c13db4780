"""The counter-based z stream on GPU: one Triton kernel that does p += Σ_k c_k·z_k in place (k ≤ 2).

z is generated in registers (Triton's own Philox, ``tl.random.philox``) and never written to
memory, so a pass reads and writes each parameter once: the memory-bandwidth bound. The
Gaussian transform is methods/_zgen.py's, written with IEEE-exact operations only (``div_rn``,
``sqrt_rn``, explicit ``fma``) and launched with fp fusion off, so the values equal the C++
CPU kernel's bit for bit. CI checks that on CPU with TRITON_INTERPRET=1 (tests/test_zgen.py).
Each program handles BLOCK counters = 4·BLOCK consecutive elements; the element → counter
map is fixed by the offset alone, never by the grid.
Usage: through ``methods._zgen.axpy_`` (CUDA tensors, or any tensor under the interpreter).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from zobench.methods import _zgen_constants

BLOCK = 256  # counters per program: 1024 elements

TWO_M24: tl.constexpr = tl.constexpr(_zgen_constants.TWO_M24)
TWO_M22: tl.constexpr = tl.constexpr(_zgen_constants.TWO_M22)
SQRT2: tl.constexpr = tl.constexpr(_zgen_constants.SQRT2)
HALF_PI: tl.constexpr = tl.constexpr(_zgen_constants.HALF_PI)
LN2_HI: tl.constexpr = tl.constexpr(_zgen_constants.LN2_HI)
LN2_LO: tl.constexpr = tl.constexpr(_zgen_constants.LN2_LO)
L0, L1, L2, L3, L4, L5, L6 = (tl.constexpr(c) for c in _zgen_constants.LOG_COEFFS)
S0, S1, S2, S3, S4, S5 = (tl.constexpr(c) for c in _zgen_constants.SIN_COEFFS)
C0, C1, C2, C3, C4, C5, C6 = (tl.constexpr(c) for c in _zgen_constants.COS_COEFFS)


@triton.jit
def _gauss_pair(xa, xb):
    """Two uint32 words → two normals, value for value as gauss_pair in _zgen_cpu.py (which writes the
    selects below as bit operations, so that CPU compilers vectorise it; the bits are the same)."""
    u = ((xa >> 8) + 1).to(tl.float32) * TWO_M24
    bits = u.to(tl.uint32, bitcast=True)
    k = (bits >> 23).to(tl.int32) - 127
    m = ((bits & 0x7FFFFF) | 0x3F800000).to(tl.float32, bitcast=True)
    big = m > SQRT2
    m = tl.where(big, m * 0.5, m)
    k = tl.where(big, k + 1, k)
    f = m - 1.0
    s = tl.math.div_rn(f, f + 2.0)
    s2 = s * s
    pl = tl.fma(tl.fma(tl.fma(tl.fma(tl.fma(tl.fma(s2, L6, L5), s2, L4), s2, L3), s2, L2), s2, L1), s2, L0)
    lnm = s * pl
    kf = k.to(tl.float32)
    lnu = tl.fma(kf, LN2_HI, tl.fma(kf, LN2_LO, lnm))
    r = tl.sqrt_rn(lnu * -2.0)
    j = xb >> 8
    q = j >> 22
    a = ((j & 0x3FFFFF).to(tl.float32) * TWO_M22) * HALF_PI
    a2 = a * a
    ps = tl.fma(tl.fma(tl.fma(tl.fma(tl.fma(a2, S5, S4), a2, S3), a2, S2), a2, S1), a2, S0)
    sn = tl.fma(a * a2, ps, a)
    pc = tl.fma(tl.fma(tl.fma(tl.fma(tl.fma(tl.fma(a2, C6, C5), a2, C4), a2, C3), a2, C2), a2, C1), a2, C0)
    cs = tl.fma(a2, pc, 1.0)
    c = tl.where(q == 0, cs, tl.where(q == 1, -sn, tl.where(q == 2, -cs, sn)))
    v = tl.where(q == 0, sn, tl.where(q == 1, cs, tl.where(q == 2, -sn, -cs)))
    return r * c, r * v


@triton.jit
def _sign(x):
    return tl.where((x >> 31) != 0, -1.0, 1.0)


@triton.jit
def _z4(seed, counters, tensor_index, stream, FAMILY: tl.constexpr):
    """The 4·len(counters) z values of these counters, in element order."""
    lo = (counters & 0xFFFFFFFF).to(tl.uint32)
    hi = (counters >> 32).to(tl.uint32)
    c2 = tl.zeros_like(lo) + tl.to_tensor(tensor_index).to(tl.uint32)
    c3 = tl.zeros_like(lo) + tl.to_tensor(stream).to(tl.uint32)
    x0, x1, x2, x3 = tl.random.philox(seed, lo, hi, c2, c3)
    if FAMILY == 0:
        z0, z1 = _gauss_pair(x0, x1)
        z2, z3 = _gauss_pair(x2, x3)
    else:
        z0, z1, z2, z3 = _sign(x0), _sign(x1), _sign(x2), _sign(x3)
    # interleave(interleave(z0, z2), interleave(z1, z3)) = z0[0], z1[0], z2[0], z3[0], z0[1], …
    return tl.interleave(tl.interleave(z0, z2), tl.interleave(z1, z3))


@triton.jit
def _to_bf16_rne(x):
    """fp32 → bf16, round to nearest even, in integer arithmetic as PyTorch's c10::BFloat16 does.
    Written out because the Triton interpreter truncates this cast (the GPU rounds to nearest
    even), and the interpreter must reproduce the GPU for the CI test to mean anything."""
    u = x.to(tl.uint32, bitcast=True)
    u = u + 0x7FFF + ((u >> 16) & 1)
    return (u >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit(do_not_specialize=["offset", "tensor_index", "stream", "seed0", "seed1"])
def _axpy_kernel(p_ptr, n, offset, tensor_index, stream, seed0, c0, seed1, c1,
                 NTERMS: tl.constexpr, FAMILY: tl.constexpr, ACC_F64: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    first = offset // 4  # the counter of p's first element
    counters = first + pid * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    idx = pid * (4 * BLOCK) + tl.arange(0, 4 * BLOCK).to(tl.int64) - (offset - 4 * first)  # element in p
    mask = (idx >= 0) & (idx < n)
    acc_t = tl.float64 if ACC_F64 else tl.float32
    acc = tl.load(p_ptr + idx, mask=mask, other=0.0).to(acc_t)
    z = _z4(seed0, counters, tensor_index, stream, FAMILY)
    acc = tl.fma(z.to(acc_t), tl.to_tensor(c0).to(acc_t), acc)
    if NTERMS == 2:
        z = _z4(seed1, counters, tensor_index, stream, FAMILY)
        acc = tl.fma(z.to(acc_t), tl.to_tensor(c1).to(acc_t), acc)
    if p_ptr.dtype.element_ty == tl.bfloat16:
        tl.store(p_ptr + idx, _to_bf16_rne(acc), mask=mask)
    else:
        tl.store(p_ptr + idx, acc.to(p_ptr.dtype.element_ty), mask=mask)


def _u64_as_i64(seed: int) -> int:
    return seed - 2**64 if seed >= 2**63 else seed


def axpy_(p: torch.Tensor, tensor_index: int, seeds: list[int], coeffs: list[float], offset: int, family: int,
          stream: int) -> None:
    n = p.numel()
    counters = (offset + n + 3) // 4 - offset // 4
    grid = (triton.cdiv(counters, BLOCK),)
    s1, c1 = (seeds[1], coeffs[1]) if len(seeds) > 1 else (0, 0.0)
    # Seeds travel as int64 bit patterns; philox takes the low and high 32 bits as its key.
    _axpy_kernel[grid](p, n, offset, tensor_index, stream, _u64_as_i64(seeds[0]), coeffs[0], _u64_as_i64(s1), c1,
                       NTERMS=len(seeds), FAMILY=family, ACC_F64=p.dtype == torch.float64, BLOCK=BLOCK,
                       enable_fp_fusion=False)
