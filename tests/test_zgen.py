"""The counter-based z stream: one value per (seed, tensor, element) on every backend, split, and thread count,
and statistically a standard normal stream."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from zobench.methods import _zgen

N_STATS = 10**7


@pytest.fixture(scope="module")
def big_stream() -> torch.Tensor:
    return _zgen.draw((N_STATS,), seed=2024, tensor_index=0)


@pytest.mark.integration
def test_triton_interpreter_writes_the_same_bits_as_the_cpu_kernel(tmp_path):
    """The Triton kernel (run by TRITON_INTERPRET=1 on CPU) and the C++ kernel agree bit for bit:
    fp32/bf16/fp16/fp64, one and two terms, unaligned offsets, both families, and sharded launches."""
    sys.path.insert(0, str(REPO / "tests"))
    import zgen_interpreter_target as target

    out = tmp_path / "triton.pt"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "zgen_interpreter_target.py"), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    triton_results = torch.load(out, weights_only=True)
    for name, *case in target.CASES:
        cpu = target.run_case("cpu", *case)
        assert cpu.dtype == triton_results[name].dtype
        assert torch.equal(cpu.view(torch.uint8), triton_results[name].view(torch.uint8)), name
        assert not torch.equal(cpu, target.start(case[0], case[2])), f"{name}: the update changed nothing"
    whole = _zgen.draw((10_007,), 77, 2)
    assert torch.equal(triton_results["sharded-fill"], whole)


def test_stream_does_not_depend_on_chunking_or_threads():
    """Chunk sizes (counters per task) and thread counts change the work split, never a value."""
    reference = _zgen.draw((300_003,), 9, 4)
    threads = torch.get_num_threads()
    try:
        for n_threads in (1, 2):
            torch.set_num_threads(n_threads)
            for chunk in (1, 7, 1000, 1 << 20):
                z = torch.empty(300_003)
                _zgen.fill(z, 9, 4, chunk=chunk)
                assert torch.equal(z, reference), (n_threads, chunk)
    finally:
        torch.set_num_threads(threads)


def test_vector_and_scalar_philox_paths_agree_where_the_counter_carries():
    """A shard of 16 elements spans at most 5 counters, too few for the 8-counter vector loop, so
    shards take the scalar Philox path and the whole tensor the vector one. Around counter 2³²,
    where the low word wraps and the high word carries, both give the same bits."""
    start, n = 4 * (2**32 - 37) + 3, 4_000
    whole = _zgen.fill(torch.empty(n), 21, 6, offset=start)
    shards = torch.empty(n)
    for lo in range(0, n, 16):
        _zgen.fill(shards[lo:lo + 16], 21, 6, offset=start + lo)
    assert torch.equal(whole, shards)
    beyond_2_32 = _zgen.fill(torch.empty(8), 21, 6, offset=4 * 2**32)
    assert not torch.equal(_zgen.draw((8,), 21, 6), beyond_2_32)  # the high word is part of the counter


def test_a_tensor_split_into_shards_gets_the_same_values():
    """Each shard passes its global element offset: the concatenated shards equal the whole tensor."""
    whole = torch.linspace(-1, 1, 50_001)
    shards = [whole[lo:hi].clone() for lo, hi in ((0, 1), (1, 4_098), (4_098, 33_333), (33_333, 50_001))]
    starts = (0, 1, 4_098, 33_333)
    _zgen.axpy_(whole, 3, [(41, 0.5), (42, -0.25)])
    for shard, lo in zip(shards, starts):
        _zgen.axpy_(shard, 3, [(41, 0.5), (42, -0.25)], offset=lo)
    assert torch.equal(torch.cat(shards), whole)


def test_two_terms_equal_two_passes_and_tensors_differ():
    """One pass with (s1, c1), (s2, c2) equals two passes (fp32: each term is one fma); the tensor
    index and the stream keep different tensors' z apart."""
    a = torch.linspace(-1, 1, 10_000)
    b = a.clone()
    _zgen.axpy_(a, 0, [(1, 0.3), (2, -0.7)])
    _zgen.axpy_(b, 0, [(1, 0.3)])
    _zgen.axpy_(b, 0, [(2, -0.7)])
    assert torch.equal(a, b)
    z = _zgen.draw((1000,), 1, 0)
    assert not torch.equal(z, _zgen.draw((1000,), 1, 1))
    assert not torch.equal(z, _zgen.draw((1000,), 1, 0, stream=1))


def test_mean_variance_and_tails_are_a_standard_normal_within_their_standard_errors(big_stream):
    """10⁷ draws: mean, variance, 4th moment and the |z| > 3 fraction each within 5 standard errors."""
    z = big_stream.double()
    n = z.numel()
    assert abs(float(z.mean())) < 5 / math.sqrt(n)
    assert abs(float(z.var()) - 1) < 5 * math.sqrt(2 / n)  # Var(z²) = 2
    assert abs(float((z**4).mean()) - 3) < 5 * math.sqrt(96 / n)  # Var(z⁴) = E z⁸ − 9 = 105 − 9
    p3 = math.erfc(3 / math.sqrt(2))
    assert abs(float((z.abs() > 3).double().mean()) - p3) < 5 * math.sqrt(p3 * (1 - p3) / n)
    assert float(z.abs().max()) > 4.5  # the tails exist (P(max of 10⁷ < 4.5) ≈ 10⁻²⁹)


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_no_correlation_between_neighbours_nor_between_adjacent_seeds(big_stream):
    """Lags 1–8 (within and across Philox counters, Box–Muller pairs included), seeds s and s+1,
    tensors j and j+1: |corr| < 5/√n, and the squares too (Box–Muller pairs share a radius)."""
    z = big_stream
    n = z.numel()
    bound = 5 / math.sqrt(n)
    for lag in range(1, 9):
        assert abs(correlation(z[:-lag], z[lag:])) < bound, lag
        assert abs(correlation(z[:-lag] ** 2, z[lag:] ** 2)) < bound, lag  # independent: SE ≈ 1/√n for any marginal
    next_seed = _zgen.draw((N_STATS,), seed=2025, tensor_index=0)
    assert abs(correlation(z, next_seed)) < bound
    next_tensor = _zgen.draw((N_STATS,), seed=2024, tensor_index=1)
    assert abs(correlation(z, next_tensor)) < bound


def test_rademacher_family_is_balanced_signs_from_the_same_keyed_stream():
    """The Rademacher family draws ±1 from the same Philox words: only ±1, mean 0 within 5 SE."""
    r = _zgen.draw((10**6,), 5, 0, family="rademacher")
    assert set(r.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(r.mean())) < 5 / math.sqrt(r.numel())


def test_bad_calls_are_refused():
    """Three terms, an unknown family, or a non-contiguous tensor are errors, not silent misuse."""
    with pytest.raises(ValueError):
        _zgen.axpy_(torch.zeros(4), 0, [(1, 1.0)] * 3)
    with pytest.raises(ValueError):
        _zgen.axpy_(torch.zeros(4), 0, [(1, 1.0)], family="uniform")
    with pytest.raises(ValueError):
        _zgen.axpy_(torch.zeros(4, 4).T, 0, [(1, 1.0)])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_kernel_writes_the_cpu_kernels_bits():
    """On a GPU, the compiled Triton kernel equals the C++ kernel bit for bit (any SM count)."""
    for dtype in (torch.float32, torch.bfloat16):
        cpu = torch.linspace(-1, 1, 1_000_003).to(dtype)
        gpu = cpu.cuda()
        _zgen.axpy_(cpu, 7, [(123, 1e-3), (124, -2e-3)], offset=5)
        _zgen.axpy_(gpu, 7, [(123, 1e-3), (124, -2e-3)], offset=5)
        assert torch.equal(gpu.cpu(), cpu), dtype
