"""First-order LoRA: backward through the adapters only (peft), then AdamW.

Placement, rank and α are shared with mezo-lora (methods/_lora.py) so the two differ
only in how they update. Defaults follow the papers: q and v, r = 8, α = 16.
"""

from __future__ import annotations

import dataclasses

import torch

from zobench.methods._fo import AdamWOver
from zobench.methods._lora import inject_lora
from zobench.ranges import ranged

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-4, gt=0)
    weight_decay: float = ranged(0.0, ge=0)
    rank: int = ranged(8, ge=1)
    alpha: int = ranged(16, gt=0)
    targets: str = "qv"  # "qv" = the attention query/value projections of the family, or module names


def build(model: torch.nn.Module, args: Args, seed: int) -> AdamWOver:
    params = inject_lora(model, args.rank, args.alpha, args.targets)
    return AdamWOver(model, params, args.lr, args.weight_decay, f"r{args.rank}-a{args.alpha}-{args.targets}")
