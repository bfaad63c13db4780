"""First-order LoRA: backward through the adapters only (peft), then AdamW.

Placement, rank and α are shared with mezo-lora (methods/_lora.py) so the two differ
only in how they update. Defaults follow the papers: q and v, r = 8, α = 16, trained as
the HF Trainer ran LoRA (methods/_fo.py): mixed precision on a half-precision base (the
adapters become fp32 masters, whatever ``adapter_dtype``), linear decay, clipping at 1.0.
``adapter_dtype: fp32`` with ``precision: pure`` trains fp32 adapters on the frozen
half-precision base without autocast.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import TrainingPlan, ranged
from zobench.methods._fo import FirstOrder, FirstOrderArgs, adamw_over, model_dtype
from zobench.methods._lora import inject_lora

VERSION = "2"


@dataclasses.dataclass
class Args(FirstOrderArgs):
    lr: float = ranged(1e-4, gt=0)
    weight_decay: float = ranged(0.0, ge=0)
    rank: int = ranged(8, ge=1)
    alpha: int = ranged(16, gt=0)
    targets: str = "qv"  # "qv" = the attention query/value projections of the family, or module names
    adapter_dtype: Literal["model", "fp32"] = "model"


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> FirstOrder:
    dtype = model_dtype(model)
    params = inject_lora(model, args.rank, args.alpha, args.targets, args.adapter_dtype)
    return adamw_over(model, params, args.lr, args.weight_decay, args, plan,
                      f"r{args.rank}-a{args.alpha}-{args.targets}+adapters-{args.adapter_dtype}", dtype)
