"""MeZO-SGD (Malladi et al. 2023): two-point SPSA with in-place, seed-regenerated perturbations.

Follows princeton-nlp/MeZO large_models/trainer.py (zo_step / zo_update), see
shared/reference/mezo-and-zo-bench.md §1.1:
  θ+εz → L₊;  θ−εz → L₋;  restore;  g = (L₊−L₋)/2ε;  θ ← θ − lr·(g·z + wd·θ)
where weight decay is skipped for names containing "bias", "layer_norm" or "layernorm"
(the reference rule, kept as is: it does decay Llama's final ``model.norm``).
Differences from the reference code, on purpose: perturbations are in place (``add_``,
no parameter-sized copy) and z comes from a private ``torch.Generator``.
"""

from __future__ import annotations

import dataclasses

import torch

from zobench.api import Closure
from zobench.methods._zo import draw_step_seed, gaussian_directions, perturb_

VERSION = "1"

NO_DECAY_SUBSTRINGS = ("bias", "layer_norm", "layernorm")


@dataclasses.dataclass
class Args:
    lr: float = 1e-6  # the maintainers' rule of thumb for full-parameter MeZO (issue #7)
    eps: float = 1e-3  # zo_eps default in MeZO's run.py
    weight_decay: float = 0.0  # the paper's OPT runs use 0


def uses_decay(name: str) -> bool:
    return not any(s in name for s in NO_DECAY_SUBSTRINGS)


class MeZO:
    forwards_per_step = 2
    variant = "reference"

    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self.decay = [uses_decay(n) for n, _ in named]
        self.args = args
        self.seed_source = torch.Generator().manual_seed(seed)
        model.eval()  # the reference runs ZO forwards in eval mode (dropout off)

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        eps, seed = self.args.eps, draw_step_seed(self.seed_source)
        perturb_(self.params, seed, +eps)
        loss_pos = closure()
        perturb_(self.params, seed, -2 * eps)
        loss_neg = closure()
        perturb_(self.params, seed, +eps)  # restore θ (exact only up to rounding)
        projected_grad = ((loss_pos - loss_neg) / (2 * eps)).item()
        self.update(seed, projected_grad)
        return loss_pos.item()

    @torch.no_grad()
    def update(self, seed: int, projected_grad: float) -> None:
        """θ ← θ − lr·(g·z + wd·θ), z regenerated from the step seed."""
        lr, wd = self.args.lr, self.args.weight_decay
        for p, z, decay in zip(self.params, gaussian_directions(self.params, seed), self.decay):
            if decay and wd:
                p.mul_(1 - lr * wd)
            p.add_(z, alpha=-lr * projected_grad)


def build(model: torch.nn.Module, args: Args, seed: int) -> MeZO:
    return MeZO(model, args, seed)
