"""Run the Triton z kernel under the Triton interpreter on CPU tensors and save what it wrote.

test_zgen runs this in a child process with TRITON_INTERPRET=1 (Triton decides between the
compiler and the interpreter when a kernel is defined, so the parent's mode cannot be switched).
Usage: ``TRITON_INTERPRET=1 python tests/zgen_interpreter_target.py OUT.pt``.
"""

from __future__ import annotations

import sys

import torch

from zobench.methods import _zgen

# (name, dtype, family, numel, offset, terms): the cases test_zgen compares with the C++ kernel.
CASES = [
    ("fp32-gauss", torch.float32, "gaussian", 70_001, 0, [(12345, 0.25)]),
    ("fp32-gauss-2terms", torch.float32, "gaussian", 9_999, 0, [(2**63 + 17, 1e-3), (18, -0.5)]),
    ("fp32-shard-offset", torch.float32, "gaussian", 5_003, 4_101, [(3, 1.0)]),
    ("bf16-gauss-2terms", torch.bfloat16, "gaussian", 8_192, 0, [(9, 1e-2), (10, -1e-3)]),
    ("fp16-gauss", torch.float16, "gaussian", 4_096, 2, [(11, 0.5)]),
    ("fp64-gauss", torch.float64, "gaussian", 2_000, 0, [(7, 0.1)]),
    ("fp32-rademacher", torch.float32, "rademacher", 4_000, 1, [(5, 0.3), (6, 0.7)]),
    # counters 2³² − 5 … 2³² + 24: the counter's low word wraps and its high word carries
    ("fp32-counter-carry", torch.float32, "gaussian", 117, 4 * (2**32 - 5) + 1, [(21, 1.0)]),
]


def start(dtype: torch.dtype, numel: int) -> torch.Tensor:
    """A deterministic non-zero starting tensor, so the update's rounding is exercised."""
    return (torch.linspace(-1, 1, numel, dtype=torch.float64) * 0.37).to(dtype)


def run_case(backend: str, dtype, family, numel, offset, terms, tensor_index: int = 5) -> torch.Tensor:
    p = start(dtype, numel)
    _zgen.axpy_(p, tensor_index, terms, offset=offset, family=family, backend=backend)
    return p


def main(out: str) -> None:
    results = {name: run_case("triton", *case) for name, *case in CASES}
    # A tensor split into three shards at unaligned offsets, each shard its own launch.
    whole = torch.zeros(10_007)
    for lo, hi in ((0, 3), (3, 4_097), (4_097, 10_007)):
        _zgen.fill(whole[lo:hi], 77, 2, offset=lo, backend="triton")
    results["sharded-fill"] = whole
    torch.save(results, out)


if __name__ == "__main__":
    main(sys.argv[1])
