"""ZO-SGD-Cons (ZO-Bench, Zhang et al. ICML 2024): the conservative step, 5 forwards.

Follows ZO-Bench/ZO-LLM zo-bench/trainer.py ``zo_conserv_step`` (L1251–L1337), see
shared/reference/newer-zo-methods.md §7.4. Per step:
  L₀ = L(θ); c from L(θ±εz); ``update(+1)`` → L₁; ``update(−2)`` → L₂;
  if L₁ > L₀: (L₀ < L₂ → ``update(+1)``, else keep) else: (L₁ < L₂ → ``update(+2)``, else keep);
  the logged loss is L₁.
``update(s)`` is one optimizer step per tensor with grad s·c·z. With plain SGD
(``base_optimizer: sgd``, the paper's conservative SGD) the candidates are θ, θ − lr·c·z and
θ + lr·c·z and the rule keeps the best of the three. The official sweeps never pass
``--optimizer``, so they ran HF AdamW (``adamw``, the default here): every ``update`` is a
further Adam step (m, v and the step count advance 2–3 times per ZO step) and the "undo"
moves are not inverses. Recorded in ``variant``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import Closure, TrainingPlan
from zobench.methods._zo_opt import (SGD, HFAdamW, StateDtype, ZOBenchStep, draw_step_seed, estimate,
                                     hf_decay_mask, named_trainable, restore_and_apply, state_bytes)

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = 1e-6  # ZO-Bench FT grid {1e-5 … 1e-8}
    eps: float = 1e-3  # grid {1e-2, 1e-3, 1e-4}
    base_optimizer: Literal["adamw", "sgd"] = "adamw"  # adamw: the sweeps (code); sgd: the paper
    weight_decay: float = 0.0  # HF AdamW's only (the sweeps: 0)
    state_dtype: StateDtype = "param"


class ZOCons(ZOBenchStep):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        names = [n for n, _ in named_trainable(model)]
        optimizer = (HFAdamW(args.lr, args.weight_decay, hf_decay_mask(model, names), args.state_dtype)
                     if args.base_optimizer == "adamw" else SGD(args.lr))
        super().__init__(model, seed, args.eps, optimizer, lambda c, z: c * z)
        self.args = args
        self.forwards_last_step = 5
        form = "code-hf-adamw" if args.base_optimizer == "adamw" else "paper-sgd"
        self.variant = f"{form}+state-{args.state_dtype}+fused-restore-update"
        self.details = {"state_bytes": state_bytes(self.params, optimizer.copies, args.state_dtype),
                        "state": "AdamW m, v" if optimizer.copies else "none"}

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        loss0 = closure().item()
        seed = draw_step_seed(self.seed_source)
        _, c = estimate(self.params, closure, seed, self.eps)

        def update(sign: float, restore: float = 0.0) -> None:
            restore_and_apply(self.params, seed, restore,
                              lambda i, p, z: self.optimizer.update(i, p, sign * (c * z)))

        update(+1.0, restore=self.eps)  # the pending restore rides on the first update's pass over z
        loss1 = closure().item()
        update(-2.0)
        loss2 = closure().item()
        if loss1 > loss0:
            if loss0 < loss2:
                update(+1.0)
        elif loss1 < loss2:
            update(+2.0)
        return loss1


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> ZOCons:
    return ZOCons(model, args, seed)
