"""Shared zeroth-order machinery: seeded directions and the multi-query two-point estimate.

A direction is never stored. It is regenerated from a seed whenever it is needed
(perturb, restore, update), so a ZO step keeps only (seed, scalar) pairs, also for
q > 1 queries (ZO-Bench's q > 1 path accumulates dense .grad buffers instead).
Usage: ``losses, grads = two_point(directions, closure, seeds, eps)``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Literal, Protocol

import torch

from zobench.scoring.causal_lm import loss_in_model_dtype

LossDtype = Literal["fp32", "model"]


def gaussian_directions(params: Iterable[torch.Tensor], seed: int) -> Iterator[torch.Tensor]:
    """Yield one standard-normal tensor per parameter, identical for the same seed and order.

    Each device gets its own ``torch.Generator`` seeded with ``seed``; the global RNG is
    never touched (MeZO's code reseeds the global RNG every call, which also reseeds
    dropout and data shuffling). z has the parameter's dtype, as in the reference.
    """
    generators: dict[torch.device, torch.Generator] = {}
    for p in params:
        gen = generators.get(p.device)
        if gen is None:
            gen = torch.Generator(device=p.device)
            gen.manual_seed(seed)
            generators[p.device] = gen
        yield torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)


@torch.no_grad()
def perturb_(params: list[torch.Tensor], seed: int, scale: float) -> None:
    """In place: θ ← θ + scale·z(seed). Only one z-sized temporary is alive at a time."""
    for p, z in zip(params, gaussian_directions(params, seed)):
        p.add_(z, alpha=scale)


def draw_step_seed(seed_source: torch.Generator) -> int:
    """A fresh step seed from the method's own generator (reproducible from the cell seed)."""
    return int(torch.randint(0, 2**62, (1,), generator=seed_source).item())


def in_loss_dtype(closure: Callable[[], torch.Tensor], loss_dtype: LossDtype) -> Callable[[], torch.Tensor]:
    """The closure with its loss in fp32 (the default: logits upcast) or in the model's dtype.

    ``model`` is what MeZO's fp16 OPT runs did (log-softmax and CE in fp16): at ε = 1e-3
    the fp16 loss difference, and so the projected gradient, is coarsely quantised.
    """
    if loss_dtype == "fp32":
        return closure
    if loss_dtype != "model":
        raise ValueError(f"unknown loss_dtype '{loss_dtype}'; valid: fp32, model")

    def in_model_dtype() -> torch.Tensor:
        with loss_in_model_dtype():
            return closure()

    return in_model_dtype


class Directions(Protocol):
    """θ ← θ + scale·d(seed) for some family of random directions (dense Gaussian, low-rank, ...)."""

    def add_(self, seed: int, scale: float) -> None: ...


class DenseGaussian:
    """MeZO's directions: one dense standard-normal z per trainable tensor, from ``torch.randn``."""

    generator = "torch"

    def __init__(self, params: list[torch.Tensor]):
        self.params = params

    def add_(self, seed: int, scale: float) -> None:
        perturb_(self.params, seed, scale)

    @torch.no_grad()
    def axpy_(self, terms: list[tuple[int, list[float]]]) -> None:
        """θ_j += Σ_k alphas_k[j]·z_k(seed_k), the terms' z regenerated side by side (see
        methods/_counter_directions.py, the same seam without the z temporaries)."""
        streams = [gaussian_directions(self.params, seed) for seed, _ in terms]
        for j, (p, *zs) in enumerate(zip(self.params, *streams)):
            for z, (_, alphas) in zip(zs, terms):
                p.add_(z, alpha=alphas[j])


class Snapshot:
    """Exact restore for low-precision weights: keep a copy of θ, copy it back instead of +εz.

    Costs one extra copy of the trainable tensors in their dtype (for full-parameter
    MeZO on a bf16 model: +1× the weights), in exchange for zero restore drift.
    """

    def __init__(self, params: list[torch.Tensor]):
        self.params = params
        self.saved: list[torch.Tensor] | None = None

    @torch.no_grad()
    def save(self) -> None:
        if self.saved is None:
            self.saved = [p.detach().clone() for p in self.params]
        else:
            for s, p in zip(self.saved, self.params):
                s.copy_(p)

    @torch.no_grad()
    def restore(self) -> None:
        for s, p in zip(self.saved, self.params):
            p.copy_(s)


@torch.no_grad()
def two_point(directions: Directions, closure: Callable[[], torch.Tensor], seeds: list[int], eps: float,
              snapshot: Snapshot | None = None, keep_last_perturbed: bool = False,
              first_perturbed: bool = False) -> tuple[list[float], list[float]]:
    """q two-point estimates g_i = (L(θ+εd_i) − L(θ−εd_i)) / 2ε, one per seed; θ is restored after each.

    With ``keep_last_perturbed`` the last query is left at θ−εd so the caller can fuse the
    restore (+εd) into its update pass: one generation of d fewer per step, same maths.
    With ``first_perturbed`` θ is already at θ+εd_0 (a pipelined update applied it).
    Returns the L(θ+εd_i) losses (MeZO logs the first) and the g_i.
    """
    losses, grads = [], []
    for i, seed in enumerate(seeds):
        if snapshot is not None:
            snapshot.save()
        if not (first_perturbed and i == 0):
            directions.add_(seed, +eps)
        loss_pos = closure()
        directions.add_(seed, -2 * eps)
        loss_neg = closure()
        losses.append(loss_pos.item())
        grads.append(((loss_pos - loss_neg) / (2 * eps)).item())
        if snapshot is not None:
            snapshot.restore()
        elif not (keep_last_perturbed and i == len(seeds) - 1):
            directions.add_(seed, +eps)
    return losses, grads


@torch.no_grad()
def restore_drift(params: list[torch.Tensor], cycle: Callable[[], None]) -> dict[str, float]:
    """Run one perturb/perturb/restore ``cycle`` and measure how far θ moved, on the real tensors.

    Copies θ first (briefly: before training, so it does not count towards the train-phase
    peak) and puts the copy back afterwards, so the probe itself leaves no drift behind.
    """
    if not params:
        return {"restore_drift_max": 0.0, "restore_drift_rms": 0.0, "restore_drift_rel_l2": 0.0}
    saved = [p.detach().clone() for p in params]
    cycle()
    max_abs, sq_diff, sq_norm, count = 0.0, 0.0, 0.0, 0
    for p, s in zip(params, saved):
        diff = (p.float() - s.float())
        max_abs = max(max_abs, float(diff.abs().max()))
        sq_diff += float(diff.pow(2).sum())
        sq_norm += float(s.float().pow(2).sum())
        count += s.numel()
        p.copy_(s)
    return {"restore_drift_max": max_abs, "restore_drift_rms": (sq_diff / count) ** 0.5,
            "restore_drift_rel_l2": (sq_diff / max(sq_norm, 1e-30)) ** 0.5}
