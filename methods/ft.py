"""First-order full fine-tuning: backward through every parameter, then AdamW or SGD.

The memory and time baseline ZO methods claim to beat (MeZO's "FT (12× memory)").
Defaults follow MeZO's finetune.sh (lr 1e-5, Adam-family, weight decay 0).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import Closure
from zobench.methods._fo import backward_step
from zobench.ranges import ranged

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-5, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = ranged(0.0, ge=0)
    momentum: float = ranged(0.0, ge=0, lt=1)  # SGD only


class FullFineTune:
    forwards_per_step = 1  # plus one backward

    def __init__(self, model: torch.nn.Module, args: Args):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.variant = args.optimizer
        if args.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(self.params, lr=args.lr, weight_decay=args.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(
                self.params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
            )
        model.train()  # as the HF Trainer does for first-order fine-tuning

    def step(self, closure: Closure) -> float:
        return backward_step(self.optimizer, closure)


def build(model: torch.nn.Module, args: Args, seed: int) -> FullFineTune:
    return FullFineTune(model, args)
