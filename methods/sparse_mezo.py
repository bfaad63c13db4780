"""Sparse-MeZO (Liu et al., NeurIPS 2025): MeZO that perturbs and updates only small-magnitude weights.

A labelled re-implementation from the paper (the official code is not available; shared/reference/
newer-zo-methods.md §6), so every variant string starts with ``paper-reimpl``.
- Thresholds, once before training: h_j = the (1−s)-quantile of |θ_j⁰| per weight tensor (ndim ≥ 2),
  so the smallest (1−s) fraction is kept (s = 0.8: 20%). 1-D tensors are dense (``mask_1d``).
- Every step: m_j = 1[|θ_j| ≤ h_j] from the current unperturbed θ;  ẑ = m⊙z;
  L± = L(θ ± εẑ);  g = (L₊ − L₋)/2ε;  θ ← θ − lr·(g·m⊙z + wd·θ)  (MeZO's weight-decay rule).
``impl``:
- ``hooks`` (default, the paper's memory-efficient form): forward pre-hooks on every module that
  holds a trainable tensor form W_eff = W + ε·m(W)⊙z inside the forward and swap it in for that
  call only; W itself is never written during the estimate, so restore drift is zero by
  construction and no mask is stored. One tensor-sized temporary at a time. Written by hand:
  torch.func.functional_call would build every perturbed tensor at once (+1× the weights), and
  parametrizations would rewrite the modules.
- ``bool-mask``: the mask is computed once per step and kept as torch.bool (1 byte an element);
  perturbation in place (MeZO-style restore rounding).
- ``recompute``: the mask is recomputed from the current, perturbed θ on every pass: no storage,
  but weights near the threshold can flip in and out of the mask (inexact restore, drift recorded).
z of tensor j is drawn from its own generator keyed by (step seed, j), so the hooks can form it in
any module order (tied weights included) and the update regenerates the same z.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Iterator, Literal

import torch

from zobench.api import Closure, DriftProbed, TrainingPlan, ranged
from zobench.methods._directions import generator, key_seed
from zobench.methods._zo import restore_drift, draw_step_seed
from zobench.methods.mezo import uses_decay

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-6, gt=0)  # MeZO's; the paper's per-model values are not public (reference §6.5)
    eps: float = ranged(1e-3, gt=0)  # MeZO's
    sparsity: float = ranged(0.8, ge=0, lt=1)  # fraction NOT perturbed; the paper's best on most tasks
    impl: Literal["hooks", "bool-mask", "recompute"] = "hooks"
    mask_rule: Literal["abs", "signed-literal"] = "abs"  # the text's |θ| ≤ h, or the pseudocode's θ ≤ h
    mask_1d: Literal["dense", "masked"] = "dense"
    weight_decay: float = ranged(0.0, ge=0)


def magnitude_threshold(p: torch.Tensor, keep: float) -> float:
    """h with |p| ≤ h for the smallest ⌈keep·numel⌉ entries (kthvalue: no 2^24-element limit)."""
    k = max(1, math.ceil(keep * p.numel()))
    magnitudes = p.detach().abs().flatten()
    if magnitudes.dtype in (torch.float16, torch.bfloat16):
        magnitudes = magnitudes.float()  # kthvalue has no half-precision CPU kernel; fp32 holds them exactly
    return float(magnitudes.kthvalue(k).values)


class SparseMeZO(DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        if not 0.0 <= args.sparsity < 1.0:
            raise ValueError("sparsity must be in [0, 1)")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.model = model
        self.params = [p for _, p in named]
        self.decay = [uses_decay(n) for n, _ in named]
        self.args = args
        self._thresholds: list[float | None] | None = None  # from θ₀, at first use (meta-device builds)
        self.masks: list[torch.Tensor | None] = [None] * len(self.params)  # bool-mask only, this step's
        self.seed_source = torch.Generator().manual_seed(seed)
        self.forwards_last_step = 2
        self.details: dict = {}  # nothing beyond the variant
        self.variant = f"paper-reimpl+{args.impl}+s{args.sparsity:g}+mask-{args.mask_rule}+1d-{args.mask_1d}" \
            "+thresholds-once"
        model.eval()

    @property
    def thresholds(self) -> list[float | None]:
        """h_j per tensor from the weights before the first step (None: perturbed densely)."""
        if self._thresholds is None:
            keep = 1.0 - self.args.sparsity
            self._thresholds = [magnitude_threshold(p, keep) if (p.ndim >= 2 or self.args.mask_1d == "masked")
                                else None for p in self.params]
        return self._thresholds

    def mask(self, j: int) -> torch.Tensor | None:
        """m_j from the tensor's current values (None: the tensor is perturbed densely)."""
        h = self.thresholds[j]
        if h is None:
            return None
        p = self.params[j]
        return (p.abs() if self.args.mask_rule == "abs" else p) <= h

    def direction(self, seed: int, j: int, mask: torch.Tensor | None) -> torch.Tensor:
        """m⊙z for tensor j, z from the (seed, j) generator in the parameter's dtype."""
        p = self.params[j]
        z = torch.randn(p.shape, generator=generator(key_seed(seed, j), p.device), device=p.device, dtype=p.dtype)
        return z if mask is None else z.mul_(mask)

    # --- in-place implementations (bool-mask, recompute) ---
    @torch.no_grad()
    def add_(self, seed: int, scale: float) -> None:
        for j, p in enumerate(self.params):
            mask = self.masks[j] if self.args.impl == "bool-mask" else self.mask(j)
            p.add_(self.direction(seed, j, mask), alpha=scale)

    # --- the hooks implementation ---
    def owners(self) -> Iterator[tuple[torch.nn.Module, list[tuple[str, int]]]]:
        """Every module holding a trainable tensor directly, with (attribute name, tensor index)."""
        index = {id(p): j for j, p in enumerate(self.params)}
        for module in self.model.modules():
            held = [(name, index[id(t)]) for name, t in module._parameters.items() if t is not None and id(t) in index]
            if held:
                yield module, held

    @contextlib.contextmanager
    def perturbed(self, seed: int, scale: float):
        """Within the block every owning module's forward sees W + scale·m⊙z instead of W."""
        handles, swapped = [], []

        def pre_hook(module, held):
            for name, j in held:
                original = module._parameters[name]
                if not isinstance(original, torch.nn.Parameter):
                    continue  # already swapped in this call (a module run twice)
                effective = torch.add(original, self.direction(seed, j, self.mask(j)), alpha=scale)
                swapped.append((module, name, original))
                module._parameters[name] = effective  # the attribute only: W's storage is untouched

        def post_hook(module, held):
            for name, j in held:
                original = self.params[j]
                module._parameters[name] = original

        try:
            for module, held in self.owners():
                handles.append(module.register_forward_pre_hook(lambda m, _a, held=held: pre_hook(m, held)))
                handles.append(module.register_forward_hook(lambda m, _a, _o, held=held: post_hook(m, held)))
            yield pre_hook, post_hook
        finally:
            for h in handles:
                h.remove()
            for module, name, original in swapped:  # also after an exception inside a forward
                module._parameters[name] = original

    # --- the step ---
    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        seed = draw_step_seed(self.seed_source)
        eps = self.args.eps
        if self.args.impl == "hooks":
            with self.perturbed(seed, eps):
                plus = closure().item()
            with self.perturbed(seed, -eps):
                minus = closure().item()
        else:
            if self.args.impl == "bool-mask":
                self.masks = [self.mask(j) for j in range(len(self.params))]
            self.add_(seed, eps)
            plus = closure().item()
            self.add_(seed, -2 * eps)
            minus = closure().item()
            self.add_(seed, eps)
        self.update(seed, (plus - minus) / (2 * eps))
        self.masks = [None] * len(self.params)
        return plus

    @torch.no_grad()
    def update(self, seed: int, g: float) -> None:
        """θ ← θ(1 − lr·wd) − lr·g·m⊙z, the mask taken from θ_t before it moves."""
        lr, wd = self.args.lr, self.args.weight_decay
        for j, p in enumerate(self.params):
            mask = self.masks[j] if self.args.impl == "bool-mask" else self.mask(j)
            d = self.direction(seed, j, mask)
            if wd and self.decay[j]:
                p.mul_(1 - lr * wd)
            p.add_(d, alpha=-lr * g)

    def drift_probe(self, seed: int = 12345) -> dict[str, float]:
        """Restore drift of one +ε, −ε cycle; for hooks, the swap in and out on every owner."""
        eps = self.args.eps

        def cycle() -> None:
            if self.args.impl == "hooks":
                for scale in (eps, -eps):
                    with self.perturbed(seed, scale) as (pre_hook, post_hook):
                        for module, held in self.owners():
                            pre_hook(module, held)
                            post_hook(module, held)
                return
            if self.args.impl == "bool-mask":
                self.masks = [self.mask(j) for j in range(len(self.params))]
            for scale in (eps, -2 * eps, eps):
                self.add_(seed, scale)
            self.masks = [None] * len(self.params)

        return restore_drift(self.params, cycle)


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> SparseMeZO:
    return SparseMeZO(model, args, seed)
