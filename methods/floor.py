"""The inference floor: forward passes only, as many per step as MeZO, and no update.

It is the physical limit for time and memory that every other method is compared to;
every suite includes it so reports can show ratios.
"""

from __future__ import annotations

import dataclasses

import torch

from zobench.api import Closure, TrainingPlan, ranged

VERSION = "1"


@dataclasses.dataclass
class Args:
    forwards: int = ranged(2, ge=1)  # MeZO's two-point estimate costs two forwards per step


class Floor:
    variant = "forward-only"
    details: dict = {}  # nothing beyond the variant (never mutated)

    def __init__(self, model: torch.nn.Module, args: Args):
        self.params: list[torch.Tensor] = []
        if args.forwards < 1:
            raise ValueError("floor needs forwards >= 1")
        self.forwards_last_step = args.forwards
        model.eval()

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        loss = closure()
        for _ in range(self.forwards_last_step - 1):
            closure()
        return loss.item()


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> Floor:
    return Floor(model, args)
