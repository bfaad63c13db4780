"""The tensor-train (TT) linear layer of LoRETTA and AdaZeta, with three contraction paths.

Format (shared/reference/adazeta-and-loretta.md §1): the weight W (in × out, applied as
x·W + b) is reshaped row-major into the modes [input modes…, output modes…] and stored as
cores G_i of shape r_{i-1} × k_i × r_i (r_0 = r_d = 1). This is a plain TT of the
reshaped tensor, not a TT-matrix, so tltorch's BlockTT does not match and no maintained
library implements it (HF PEFT has no TT method): hence this file.

Contraction paths (all equal to x·W up to fp32 rounding; the property test checks it):
- ``sequential``: contract G_1…G_d into W, then x·W (the LoRETTA package, AdaZeta's RoBERTa).
- ``parallel``: AdaZeta's Llama path. Contract the input cores into A (in × r_m) and the
  output cores into C (r_m × out) separately, then (x·A)·C. W is never formed and the
  intermediate is [tokens, r_m]. Needs the input modes to multiply to in_features.
- ``groups-g`` (g = 2, 3, 4): the generalisation: split the cores into g contiguous groups,
  with the input/output boundary as one of the cuts, contract each group on its own, and
  apply the groups to x in turn. ``groups-2`` is ``parallel``.
Usage: ``TTLinear(576, 64, tt_modes(576, 64), rank=5, contraction="parallel")``.
"""

from __future__ import annotations

import math

import torch

CONTRACTIONS = ("sequential", "parallel", "groups-2", "groups-3", "groups-4")

# The reference's TT shapes for a bottleneck of 64, keyed by hidden size: the mode list of
# the down projection hidden → 64 (loretta/utils/tensor_util.py, LoRETTA Table 10).
ADAPTER_PRESETS_64 = {
    768: [8, 8, 12, 8, 8],
    1024: [4, 8, 8, 8, 8, 4],
    4096: [16, 16, 16, 4, 4, 4],
    5120: [5, 8, 8, 16, 8, 8],
    8192: [4, 16, 16, 16, 8, 4],
}
# LoRETTA-rep's shapes for the LoRA bottleneck r = 8 (TENSOR_SHAPE[8][hidden]).
LORA_PRESETS_8 = {768: [8, 8, 12, 8], 1024: [4, 8, 8, 8, 4], 4096: [16, 16, 8, 4, 4]}


def balanced_factors(n: int, count: int) -> list[int]:
    """Split n into ``count`` factors as equal as possible (largest prime factors placed first)."""
    primes, rest, p = [], n, 2
    while p * p <= rest:
        while rest % p == 0:
            primes.append(p)
            rest //= p
        p += 1
    if rest > 1:
        primes.append(rest)
    modes = [1] * count
    for prime in sorted(primes, reverse=True):
        modes[modes.index(min(modes))] *= prime
    return sorted(m for m in modes if m > 1) or [1]


def auto_modes(n: int) -> list[int]:
    """Balanced modes of about 16 or less each, as the presets use (4096 → 16·16·16, 768 → 8·8·12)."""
    if n < 1:
        raise ValueError(f"cannot factorise size {n}")
    return balanced_factors(n, max(1, math.ceil(math.log(n, 16) - 1e-9)))


def tt_modes(in_features: int, out_features: int, preset: dict[int, list[int]] | None = None,
             reverse_up: bool = True) -> list[int]:
    """The mode list for in → out: the reference's preset where one exists, else balanced modes.

    Presets are keyed by the large side and written for the down projection. For the up
    projection, ``reverse_up`` (AdaZeta's Llama code: [16,16,16,4,4,4] down, [4,4,4,16,16,16]
    up) reverses the list, which keeps the input modes first as the parallel contraction
    needs; without it the up projection reuses the down list, as the LoRETTA package does
    (the sequential contraction only needs the product). Both give the same parameter count.
    """
    preset = preset or {}
    if in_features >= out_features and in_features in preset and math.prod(preset[in_features]) == in_features * out_features:
        return list(preset[in_features])
    if out_features > in_features and out_features in preset and math.prod(preset[out_features]) == in_features * out_features:
        return list(reversed(preset[out_features])) if reverse_up else list(preset[out_features])
    return auto_modes(in_features) + auto_modes(out_features)


def input_split(modes: list[int], in_features: int) -> int | None:
    """The number m of leading modes whose product is in_features, or None if there is none."""
    product = 1
    for m, k in enumerate(modes):
        if product == in_features:
            return m
        product *= k
    return None


def group_cuts(modes: list[int], in_features: int, groups: int) -> list[int]:
    """Cut positions 0 < c_1 < … < d for ``groups`` contiguous core groups, one cut at the input split."""
    d, split = len(modes), input_split(modes, in_features)
    if split is None or split == 0 or split == d:
        raise ValueError(f"TT modes {modes} do not split into input modes multiplying to {in_features} "
                         f"and output modes; parallel contraction needs that (use contraction 'sequential')")
    if not 2 <= groups <= d:
        raise ValueError(f"cannot split {d} TT cores ({modes}) into {groups} groups; valid: 2..{d}")
    # As many groups on each side as its share of the cores, at least one a side.
    low, high = max(1, groups - (d - split)), min(split, groups - 1)
    n_in = min(max(round(groups * split / d), low), high)
    n_out = groups - n_in

    def even(start: int, stop: int, parts: int) -> list[int]:
        return [start + round(i * (stop - start) / parts) for i in range(1, parts + 1)]

    return even(0, split, n_in) + even(split, d, n_out)


class TTLinear(torch.nn.Module):
    """y = x·W + b with W held as TT cores; parameters in fp32 whatever the input dtype."""

    def __init__(self, in_features: int, out_features: int, modes: list[int], rank: int, bias: bool = True,
                 contraction: str = "parallel", device: torch.device | str | None = None):
        super().__init__()
        if math.prod(modes) != in_features * out_features:
            raise ValueError(f"TT modes {modes} multiply to {math.prod(modes)}, not {in_features}×{out_features}"
                             f" = {in_features * out_features}")
        if rank < 1:
            raise ValueError(f"TT rank must be >= 1, got {rank}")
        if contraction not in CONTRACTIONS:
            raise ValueError(f"unknown contraction '{contraction}'; valid: {', '.join(CONTRACTIONS)}")
        self.in_features, self.out_features, self.modes, self.rank = in_features, out_features, list(modes), rank
        self.contraction = contraction
        named = {"sequential": 0, "parallel": 2}  # 0: no groups, W is formed
        groups = named[contraction] if contraction in named else int(contraction.removeprefix("groups-"))
        self.cuts = group_cuts(self.modes, in_features, groups) if groups else [len(modes)]
        self.split = input_split(self.modes, in_features)
        ranks = [1] + [rank] * (len(modes) - 1) + [1]
        self.cores = torch.nn.ParameterList(
            torch.nn.Parameter(torch.empty(ranks[i], k, ranks[i + 1], device=device, dtype=torch.float32))
            for i, k in enumerate(modes))
        self.bias = torch.nn.Parameter(torch.empty(out_features, device=device, dtype=torch.float32)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The reference's init: core_i ~ N(0,1)/√r_i · σ^{1/d}, σ = √(1/(in+out)); bias ~ U(±1/√out).

        The reconstructed W then has std ≈ σ. The output is not zero at init (the
        reference's ``init_weights="bert"`` never reaches TT modules).
        """
        sigma = (1.0 / (self.in_features + self.out_features)) ** 0.5
        scale = sigma ** (1.0 / len(self.modes))
        for core in self.cores:
            core.normal_().mul_(scale / core.shape[2] ** 0.5)
        if self.bias is not None:
            bound = 1.0 / self.out_features ** 0.5
            self.bias.uniform_(-bound, bound)

    def merged(self, start: int, stop: int) -> torch.Tensor:
        """Cores start..stop-1 contracted into one tensor of shape r_start × Π k × r_stop."""
        out = self.cores[start]
        for core in self.cores[start + 1:stop]:
            left, mid, _ = out.shape
            out = (out.reshape(left * mid, -1) @ core.reshape(core.shape[0], -1)).reshape(left, mid * core.shape[1], -1)
        return out

    def weight(self) -> torch.Tensor:
        """The dense W (in × out): only the sequential path and the tests form it."""
        return self.merged(0, len(self.cores)).reshape(self.in_features, self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        h = x.reshape(-1, self.in_features).to(torch.float32)
        if self.contraction == "sequential":
            y = h @ self.weight()
        else:
            y = self._grouped(h)
        y = y.reshape(*lead, self.out_features)
        return y + self.bias if self.bias is not None else y

    def _grouped(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the core groups to h in turn; no intermediate is larger than tokens × in × r."""
        n, start = h.shape[0], 0
        state = h.reshape(n, self.in_features, 1)  # [tokens, remaining input modes, rank]
        for stop in self.cuts:
            group = self.merged(start, stop)  # r_left × P × r_right
            r_left, p, r_right = group.shape
            if stop <= self.split:  # input side: sum over this group's modes and the running rank
                rest = state.shape[1] // p
                state = state.reshape(n, p, rest, r_left).permute(0, 2, 1, 3).reshape(n * rest, p * r_left)
                state = (state @ group.permute(1, 0, 2).reshape(p * r_left, r_right)).reshape(n, rest, r_right)
            else:  # output side: expand by this group's modes
                done = state.shape[1]
                state = (state.reshape(n * done, r_left) @ group.reshape(r_left, p * r_right)).reshape(n, done * p, r_right)
            start = stop
        return state.reshape(n, self.out_features)

    def extra_repr(self) -> str:
        return (f"in={self.in_features}, out={self.out_features}, modes={self.modes}, rank={self.rank}, "
                f"contraction={self.contraction}, bias={self.bias is not None}")
