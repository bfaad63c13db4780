"""The counter-based z stream on CPU: a small C++ kernel, multi-threaded, fused into p += Σ c_k·z_k.

Why hand-written C++: no library generates a keyed Philox stream with our exactly-specified
Gaussian transform (see methods/_zgen.py) fused into an in-place update. ``torch.randn`` is a
different stream (mt19937) and single-threaded on CPU; numpy/numba would need either a z
temporary or a new dependency. The kernel is built once per machine by PyTorch's own
``torch.utils.cpp_extension.load_inline`` (cached under ~/.cache/torch_extensions) and runs
on PyTorch's intra-op thread pool (``torch.set_num_threads``).

Bit-exactness: compiled with -ffp-contract=off, so a*b+c is never silently fused (the
Triton kernel is launched with fp fusion off too); fmas are written out where intended.
Usage: through ``methods._zgen.axpy_``.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import torch

from zobench.methods import _zgen_constants

_MODULE = None
_LOCK = threading.Lock()
DEFAULT_CHUNK = 1 << 14  # counters (4 elements each) per task: 64 Ki elements


def _c(x: float) -> str:
    """A float32 constant as an exact C hex literal."""
    return float(x).hex() + "f"


def _f32_bits(x: float) -> int:
    """The bit pattern of a float32 value."""
    return int(np.float32(x).view(np.uint32))


def _horner(name: str, var: str, coeffs: list[float]) -> str:
    """C statements: name = ((c_n·var + c_{n−1})·var + …) + c_0, one fma per step."""
    lines = [f"float {name} = {_c(coeffs[-1])};"]
    lines += [f"{name} = std::fma({name}, {var}, {_c(c)});" for c in reversed(coeffs[:-1])]
    return "\n  ".join(lines)


def _prelude() -> str:
    """Includes, the inner batch size and the bit casts."""
    return r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
// The hand-vectorised Philox is for AVX2 machines without AVX-512: there GCC's own vectorisation of
// the 32x32->64 product was measured 2.5x slower. With AVX-512, GCC's 512-bit vectorisation of the
// portable loop is kept (it was the fast path measured on AVX-512 Xeons).
#if defined(__AVX2__) && !defined(__AVX512F__)
#define ZGEN_AVX2_PHILOX 1
#include <immintrin.h>
#endif

namespace {
constexpr int64_t CH = 256;  // counters per inner batch: 1024 z values per term on the stack

inline float as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t as_uint(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

"""


def _gauss_pair() -> str:
    """Box-Muller from two Philox words, with only IEEE-exact operations (the constants from _zgen_constants)."""
    z = _zgen_constants
    return r"""// Two uint32 words -> two normals (Box-Muller), with only IEEE-exact operations (see _zgen.py).
// Written without branches or select chains (integer masks instead) so that compilers vectorise
// it on every vector ISA: with AVX2 alone, GCC refused the ternary chains ("control flow in loop")
// and ran this scalar, 3x slower. Every value equals the Triton kernel's operation by operation:
// halving m in [1, 2) is exactly an exponent decrement, comparing positive floats is comparing
// their bits, and flipping the sign bit is IEEE negation.
inline void gauss_pair(uint32_t xa, uint32_t xb, float* out) {
  float u = (float)(int32_t)((xa >> 8) + 1u) * """ + _c(z.TWO_M24) + r""";   // (0, 1], exact
  uint32_t bits = as_uint(u);
  uint32_t mbits = (bits & 0x7fffffu) | 0x3f800000u;           // m in [1, 2)
  uint32_t big = mbits > """ + f"0x{_f32_bits(z.SQRT2):08x}u" + r""" ? 1u : 0u;    // m > sqrt(2)
  float m = as_float(mbits - (big << 23));                     // m/2 when big: into [sqrt(1/2), sqrt(2)]
  int32_t k = (int32_t)(bits >> 23) - 127 + (int32_t)big;
  float f = m - 1.0f;
  float s = f / (f + 2.0f);
  float s2 = s * s;
  """ + _horner("pl", "s2", z.LOG_COEFFS) + r"""
  float lnm = s * pl;
  float kf = (float)k;
  float lnu = std::fma(kf, """ + _c(z.LN2_HI) + r""", std::fma(kf, """ + _c(z.LN2_LO) + r""", lnm));
  float r = std::sqrt(lnu * -2.0f);
  uint32_t j = xb >> 8;
  uint32_t q = j >> 22;                                        // the quadrant of the angle
  float a = ((float)(int32_t)(j & 0x3fffffu) * """ + _c(z.TWO_M22) + r""") * """ + _c(z.HALF_PI) + r""";
  float a2 = a * a;
  """ + _horner("ps", "a2", z.SIN_COEFFS) + r"""
  float sn = std::fma(a * a2, ps, a);
  """ + _horner("pc", "a2", z.COS_COEFFS) + r"""
  float cs = std::fma(a2, pc, 1.0f);
  // (cos, sin) of a + q·pi/2: odd quadrants swap the pair; signs by quadrant (c: q = 1, 2; v: q = 2, 3).
  uint32_t swap = 0u - (q & 1u);
  uint32_t cbits = (as_uint(sn) & swap) | (as_uint(cs) & ~swap);
  uint32_t vbits = (as_uint(cs) & swap) | (as_uint(sn) & ~swap);
  float c = as_float(cbits ^ (((q ^ (q >> 1)) & 1u) << 31));
  float v = as_float(vbits ^ ((q >> 1) << 31));
  out[0] = r * c;
  out[1] = r * v;
}

"""


def _philox_block() -> str:
    """Philox4x32-10 over a block of counters into four word planes, then Gaussian or Rademacher z."""
    return r"""// Philox4x32-10 with key = seed, the rounds of triton.language.random.philox_impl.
inline void philox_one(uint32_t key0, uint32_t key1, uint64_t b, uint32_t c2, uint32_t c3,
                       uint32_t& w0, uint32_t& w1, uint32_t& w2, uint32_t& w3) {
  uint32_t x0 = (uint32_t)b, x1 = (uint32_t)(b >> 32), x2 = c2, x3 = c3, k0 = key0, k1 = key1;
  for (int r = 0; r < 10; ++r) {
    uint64_t pa = (uint64_t)0xD2511F53u * x0;
    uint64_t pb = (uint64_t)0xCD9E8D57u * x2;
    uint32_t n0 = (uint32_t)(pb >> 32) ^ x1 ^ k0;
    uint32_t n2 = (uint32_t)(pa >> 32) ^ x3 ^ k1;
    x1 = (uint32_t)pb;
    x3 = (uint32_t)pa;
    x0 = n0;
    x2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  w0 = x0; w1 = x1; w2 = x2; w3 = x3;
}

#if ZGEN_AVX2_PHILOX
// High and low words of 8 lanes x times the constant in m (written by hand: GCC vectorises the
// uint64 product with 4-lane 64-bit vectors and repacking; this is 2 vpmuludq + 2 blends).
inline void mulhilo8(__m256i x, __m256i m, __m256i& hi, __m256i& lo) {
  __m256i even = _mm256_mul_epu32(x, m);
  __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
#endif

// The four Philox words of counters b0 .. b0+nb-1 (nb <= CH) into planes w[0..3][i].
inline void philox_planes(uint64_t seed, int64_t b0, int64_t nb, uint32_t c2, uint32_t c3, uint32_t (*w)[CH]) {
  const uint32_t key0 = (uint32_t)seed, key1 = (uint32_t)(seed >> 32);
  int64_t i = 0;
#if ZGEN_AVX2_PHILOX
  const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (; i + 8 <= nb; i += 8) {
    const uint64_t b = (uint64_t)(b0 + i);
    if ((uint32_t)b > 0xFFFFFFF8u) break;  // the low word would carry inside these 8: the scalar tail does them
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)b), lane);
    __m256i x1 = _mm256_set1_epi32((int)(uint32_t)(b >> 32));
    __m256i x2 = _mm256_set1_epi32((int)c2), x3 = _mm256_set1_epi32((int)c3);
    uint32_t k0 = key0, k1 = key1;
    for (int r = 0; r < 10; ++r) {
      __m256i hi_a, lo_a, hi_b, lo_b;
      mulhilo8(x0, m0, hi_a, lo_a);
      mulhilo8(x2, m1, hi_b, lo_b);
      __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi_b, x1), _mm256_set1_epi32((int)k0));
      __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi_a, x3), _mm256_set1_epi32((int)k1));
      x1 = lo_b;
      x3 = lo_a;
      x0 = n0;
      x2 = n2;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    _mm256_storeu_si256((__m256i*)(w[0] + i), x0);
    _mm256_storeu_si256((__m256i*)(w[1] + i), x1);
    _mm256_storeu_si256((__m256i*)(w[2] + i), x2);
    _mm256_storeu_si256((__m256i*)(w[3] + i), x3);
  }
#endif
  // The rest (all of it without AVX2): left to the compiler's vectoriser.
#pragma omp simd
  for (int64_t t = i; t < nb; ++t) philox_one(key0, key1, (uint64_t)(b0 + t), c2, c3, w[0][t], w[1][t], w[2][t], w[3][t]);
}

// z for counters b0 .. b0+nb-1 (elements 4*b0 ...), in element order: words (0, 1) give
// elements 0 and 1 of a counter, words (2, 3) elements 2 and 3.
template <int FAMILY>
void gen_block(uint64_t seed, int64_t b0, int64_t nb, uint32_t c2, uint32_t c3, float* z) {
  alignas(64) uint32_t w[4][CH];
  philox_planes(seed, b0, nb, c2, c3, w);
#pragma omp simd
  for (int64_t i = 0; i < nb; ++i) {
    if (FAMILY == 0) {
      gauss_pair(w[0][i], w[1][i], z + 4 * i);
      gauss_pair(w[2][i], w[3][i], z + 4 * i + 2);
    } else {
      z[4 * i] = (w[0][i] >> 31) ? -1.0f : 1.0f;
      z[4 * i + 1] = (w[1][i] >> 31) ? -1.0f : 1.0f;
      z[4 * i + 2] = (w[2][i] >> 31) ? -1.0f : 1.0f;
      z[4 * i + 3] = (w[3][i] >> 31) ? -1.0f : 1.0f;
    }
  }
}

"""


def _axpy_blocks() -> str:
    """θ += Σ cᵢ·z(seedᵢ) over a block range, accumulating in float (double for double tensors)."""
    return r"""template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

template <typename T, int FAMILY>
void axpy_blocks(T* p, int64_t n, int64_t offset, uint32_t c2, uint32_t c3, int nterms,
                 const uint64_t* seeds, const float* coef, int64_t blo, int64_t bhi) {
  using A = typename Acc<T>::type;
  alignas(64) float z0[4 * CH];
  alignas(64) float z1[4 * CH];
  for (int64_t b0 = blo; b0 < bhi; b0 += CH) {
    int64_t nb = std::min(CH, bhi - b0);
    gen_block<FAMILY>(seeds[0], b0, nb, c2, c3, z0);
    if (nterms == 2) gen_block<FAMILY>(seeds[1], b0, nb, c2, c3, z1);
    int64_t g_lo = std::max<int64_t>(4 * b0, offset), g_hi = std::min<int64_t>(4 * (b0 + nb), offset + n);
    T* q = p + (g_lo - offset);
    const float* za = z0 + (g_lo - 4 * b0);
    const float* zb = z1 + (g_lo - 4 * b0);
    const A ca = (A)coef[0], cb = (A)coef[1];
    const int64_t len = g_hi - g_lo;
    if (nterms == 1) {
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) q[i] = (T)std::fma((A)za[i], ca, (A)q[i]);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) q[i] = (T)std::fma((A)zb[i], cb, std::fma((A)za[i], ca, (A)q[i]));
    }
  }
}
}  // namespace

"""


def _entry() -> str:
    """The Python-visible ``axpy``: checks, then the blocks in parallel."""
    return r"""void axpy(torch::Tensor p, int64_t tensor_index, std::vector<int64_t> seeds, std::vector<double> coeffs,
          int64_t offset, int64_t family, int64_t stream, int64_t chunk) {
  TORCH_CHECK(p.device().is_cpu() && p.is_contiguous(), "axpy: a contiguous CPU tensor");
  TORCH_CHECK(seeds.size() == coeffs.size() && seeds.size() >= 1 && seeds.size() <= 2, "axpy: 1 or 2 terms");
  const int64_t n = p.numel();
  if (n == 0) return;
  uint64_t s[2] = {(uint64_t)seeds[0], seeds.size() > 1 ? (uint64_t)seeds[1] : 0};
  float c[2] = {(float)coeffs[0], seeds.size() > 1 ? (float)coeffs[1] : 0.0f};
  const int nterms = (int)seeds.size();
  const uint32_t c2 = (uint32_t)tensor_index, c3 = (uint32_t)stream;
  const int64_t blo = offset / 4, bhi = (offset + n + 3) / 4;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, p.scalar_type(), "zgen_axpy", [&] {
    scalar_t* data = p.data_ptr<scalar_t>();
    at::parallel_for(blo, bhi, chunk, [&](int64_t lo, int64_t hi) {
      if (family == 0) axpy_blocks<scalar_t, 0>(data, n, offset, c2, c3, nterms, s, c, lo, hi);
      else axpy_blocks<scalar_t, 1>(data, n, offset, c2, c3, nterms, s, c, lo, hi);
    });
  });
}
"""


def source() -> str:
    """The extension's C++ source: the pieces in order (the build's cache key hashes it)."""
    return _prelude() + _gauss_pair() + _philox_block() + _axpy_blocks() + _entry()


# -march=native: the build is for this machine's CPU (its vector units), so the cache key below
# includes the CPU's feature flags. -mprefer-vector-width=512 uses AVX-512 where there is one
# (about 10% faster here). -ffp-contract=off keeps every a*b+c as written (bit-exactness).
CFLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffp-contract=off", "-fno-math-errno",
          "-fopenmp"]  # at::parallel_for is OpenMP in torch's CPU builds


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def module():
    """The compiled kernel, built on first use (about a minute once per machine, then cached)."""
    global _MODULE
    with _LOCK:
        if _MODULE is None:
            from torch.utils.cpp_extension import load_inline

            src = source()
            tag = hashlib.sha256("\n".join([src, *CFLAGS, _cpu_flags()]).encode()).hexdigest()[:12]
            _MODULE = load_inline(name=f"zobench_zgen_{tag}", cpp_sources=[src], functions=["axpy"],
                                  extra_cflags=CFLAGS, extra_ldflags=["-fopenmp"], verbose=False)
    return _MODULE


def _signed64(seed: int) -> int:
    return seed - 2**64 if seed >= 2**63 else seed


def axpy_(p: torch.Tensor, tensor_index: int, seeds: list[int], coeffs: list[float], offset: int, family: int,
          stream: int, chunk: int) -> None:
    if p.device.type != "cpu":
        raise ValueError(f"the C++ z kernel runs on CPU tensors; got one on {p.device}")
    module().axpy(p, tensor_index, [_signed64(s) for s in seeds], coeffs, offset, family, stream,
                  chunk or DEFAULT_CHUNK)
