"""First-order LoRA: backward through the adapters only (peft), then AdamW.

Placement, rank and α are shared with mezo-lora (methods/_lora.py) so the two differ
only in how they update. Defaults follow the papers: q and v, r = 8, α = 16.
"""

from __future__ import annotations

import dataclasses

import torch

from zobench.api import Closure
from zobench.methods._fo import backward_step
from zobench.methods._lora import inject_lora

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = 1e-4
    weight_decay: float = 0.0
    rank: int = 8
    alpha: int = 16
    targets: str = "qv"  # "qv" = the attention query/value projections of the family, or module names


class LoRAFineTune:
    forwards_per_step = 1  # plus one backward

    def __init__(self, model: torch.nn.Module, args: Args):
        self.params = inject_lora(model, args.rank, args.alpha, args.targets)
        self.variant = f"r{args.rank}-a{args.alpha}-{args.targets}"
        self.optimizer = torch.optim.AdamW(self.params, lr=args.lr, weight_decay=args.weight_decay)
        model.train()

    def step(self, closure: Closure) -> float:
        return backward_step(self.optimizer, closure)


def build(model: torch.nn.Module, args: Args, seed: int) -> LoRAFineTune:
    return LoRAFineTune(model, args)
