"""MeZO-SGD (Malladi et al. 2023): two-point SPSA with in-place, seed-regenerated perturbations.

Follows princeton-nlp/MeZO large_models/trainer.py (zo_step / zo_update), see
shared/reference/mezo-and-zo-bench.md §1.1:
  θ+εz → L₊;  θ−εz → L₋;  restore;  g = (L₊−L₋)/2ε;  θ ← θ − lr·(g·z + wd·θ)
where weight decay is skipped for names containing "bias", "layer_norm" or "layernorm"
(the reference rule, kept as is: it does decay Llama's final ``model.norm``).
Differences from the reference code, all recorded in ``variant``:
- perturbations are in place (``add_``) and z comes from a private ``torch.Generator``;
- ``fused_update`` (default) applies the last restore (+εz) and the update (−lr·g·z) in
  one pass: z is generated 3 times a step instead of 4, and the maths is unchanged;
- ``queries`` q > 1 averages q two-point estimates, keeping only (seed, g) pairs;
- ``restore: snapshot`` restores from a copy of θ (exact; costs 1× the trainable tensors),
  for fp16/bf16 weights where +εz−2εz+εz does not return to θ;
- ``loss_dtype``: ``fp32`` (default) upcasts the logits for the loss; ``model`` keeps the
  model's dtype, as MeZO's fp16 OPT runs computed log-softmax and CE.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import Closure
from zobench.methods._zo import (DenseGaussian, LossDtype, Snapshot, draw_step_seed, gaussian_directions,
                                 in_loss_dtype, restore_drift, two_point)
from zobench.ranges import ranged

VERSION = "2"

NO_DECAY_SUBSTRINGS = ("bias", "layer_norm", "layernorm")


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-6, gt=0)  # the maintainers' rule of thumb for full-parameter MeZO (issue #7)
    eps: float = ranged(1e-3, gt=0)  # zo_eps default in MeZO's run.py
    weight_decay: float = ranged(0.0, ge=0)  # the paper's OPT runs use 0
    queries: int = ranged(1, ge=1)  # q two-point estimates averaged per step (the reference: 1)
    fused_update: bool = True
    restore: Literal["inplace", "snapshot"] = "inplace"
    loss_dtype: LossDtype = "fp32"


def uses_decay(name: str) -> bool:
    return not any(s in name for s in NO_DECAY_SUBSTRINGS)


class MeZO:
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        if args.queries < 1:
            raise ValueError("queries must be >= 1")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self.decay = [uses_decay(n) for n, _ in named]
        self.args = args
        self.directions = DenseGaussian(self.params)
        self.snapshot = Snapshot(self.params) if args.restore == "snapshot" else None
        self.fused = args.fused_update and self.snapshot is None
        self.forwards_per_step = 2 * args.queries
        self.variant = "reference" + ("+fused-restore-update" if self.fused else "") + \
            (f"+q{args.queries}" if args.queries > 1 else "") + ("+snapshot-restore" if self.snapshot else "") + \
            ("+loss-in-model-dtype" if args.loss_dtype == "model" else "")
        self.seed_source = torch.Generator().manual_seed(seed)
        model.eval()  # the reference runs ZO forwards in eval mode (dropout off)

    @torch.no_grad()
    def step(self, closure: Closure, queries: int | None = None) -> float:
        """One SPSA step with ``queries`` two-point estimates (default: ``args.queries``)."""
        seeds = [draw_step_seed(self.seed_source) for _ in range(queries or self.args.queries)]
        closure = in_loss_dtype(closure, self.args.loss_dtype)
        losses, grads = two_point(self.directions, closure, seeds, self.args.eps, self.snapshot,
                                  keep_last_perturbed=self.fused)
        self.update(seeds, grads)
        return losses[0]

    @torch.no_grad()
    def update(self, seeds: list[int], grads: list[float]) -> None:
        """θ ← θ(1 − lr·wd) − lr·mean_i(g_i·z_i), z_i regenerated from each seed.

        When fused, θ is still at θ−εz_last: the last pass adds ε(1 − lr·wd)·z_last as well.
        """
        lr, wd, q = self.args.lr, self.args.weight_decay, len(seeds)
        for i, (seed, g) in enumerate(zip(seeds, grads)):
            first, last = i == 0, i == q - 1
            restore = self.args.eps if self.fused and last else 0.0
            for p, z, decay in zip(self.params, gaussian_directions(self.params, seed), self.decay):
                shrink = 1 - lr * wd if decay and wd else 1.0
                if first and shrink != 1.0:
                    p.mul_(shrink)
                # The shrink (first pass) also shrank the pending −εz_last, so the fused
                # restore adds ε·shrink·z_last: (θ−εz+εz)(1−lr·wd) exactly as unfused.
                p.add_(z, alpha=restore * shrink - lr * g / q)

    def drift_probe(self, seed: int = 12345) -> dict[str, float]:
        """Restore drift of one +ε, −2ε, restore cycle on the real parameters (before training)."""
        def cycle() -> None:
            if self.snapshot is not None:
                self.snapshot.save()
            self.directions.add_(seed, self.args.eps)
            self.directions.add_(seed, -2 * self.args.eps)
            if self.snapshot is not None:
                self.snapshot.restore()
            else:
                self.directions.add_(seed, self.args.eps)

        return restore_drift(self.params, cycle)


def build(model: torch.nn.Module, args: Args, seed: int) -> MeZO:
    return MeZO(model, args, seed)
