"""The float32 constants of the counter generator's Gaussian transform (methods/_zgen.py).

The single source for the C++ CPU kernel (methods/_zgen_cpu.py) and the Triton kernel
(methods/_zgen_triton.py): a leaf module, so the kernels need not import the dispatcher
that imports them. Every constant is a float32 value held exactly in a Python float.
"""

from __future__ import annotations

import math

import numpy as np


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
