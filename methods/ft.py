"""First-order full fine-tuning: backward through every parameter, then AdamW or SGD.

The memory and time baseline ZO methods claim to beat (MeZO's "FT (12× memory)").
Defaults follow MeZO's finetune.sh (lr 1e-5, Adam-family, weight decay 0) as the HF Trainer
ran it: mixed precision (``--fp16``: fp32 master weights and AdamW states, autocast, loss
scaling), linear decay to 0 without warm-up, gradient clipping at 1.0. ``precision: pure``
keeps the weights and AdamW states in the model's half precision instead (see methods/_fo.py).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import TrainingPlan, ranged
from zobench.methods._fo import FirstOrder, FirstOrderArgs, MakeOptimizer, adamw

VERSION = "2"


@dataclasses.dataclass
class Args(FirstOrderArgs):
    lr: float = ranged(1e-5, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = ranged(0.0, ge=0)
    momentum: float = ranged(0.0, ge=0, lt=1)  # SGD only


def optimizer_for(args: Args) -> MakeOptimizer:
    if args.optimizer == "adamw":
        return adamw(args.lr, args.weight_decay)

    def sgd(params: list[torch.Tensor], eps_floor: float | None) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    return sgd


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> FirstOrder:
    params = [p for p in model.parameters() if p.requires_grad]
    return FirstOrder(model, params, optimizer_for(args), args, plan, args.optimizer)
