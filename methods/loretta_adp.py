"""LoRETTA_adp (Yang et al., NAACL 2024): tensorized (TT) bottleneck adapters, AdamW or ZO.

Same adapters and placement code as AdaZeta (methods/_tt_adapters.py), following
shared/reference/adazeta-and-loretta.md §2: down TT hidden → 64 → ReLU → up TT, bias,
s = 1, LoRETTA's TT shapes, the package's full-reconstruction contraction.
- ``optimizer: adamw`` is LoRETTA as published (lr 1e-4); ``zo`` runs the multi-query
  ZO estimator of methods/_zo.py over the same tensors (lr 1e-4, ε 1e-3, fixed Q).
- ``train_norms``: True is the paper (LayerNorm/RMSNorm trainable; Llama-2-7B at rank 5
  then has 876,800 trainable parameters, the paper's "0.88M"). False is what the
  original package does for adapters: ``mark_adapter_layernorm_cls_trainable`` tests a
  stale loop variable, so norms are never unfrozen.
- ``rank`` 8 is large_models/run.py's tensor_rank since 2024-04-19 (the README uses 5).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.methods import mezo
from zobench.methods._fo import AdamWOver
from zobench.methods._tt_adapters import ADAPTER_PRESETS_64, inject_tt_adapters
from zobench.ranges import ranged

VERSION = "1"


@dataclasses.dataclass
class LorettaArgs:
    """What LoRETTA adp and rep share: TT contraction and shapes, norms, and the optimizer."""

    lr: float = ranged(1e-4, gt=0)
    weight_decay: float = ranged(0.0, ge=0)
    contraction: Literal["sequential", "parallel", "groups-3", "groups-4"] = "sequential"
    modes: Literal["preset", "auto"] = "preset"
    train_norms: bool = True
    optimizer: Literal["adamw", "zo"] = "adamw"
    eps: float = ranged(1e-3, gt=0)  # zo only
    queries: int = ranged(1, ge=1)  # zo only


@dataclasses.dataclass
class Args(LorettaArgs):
    rank: int = ranged(8, ge=1)  # TT rank
    bottleneck: int = ranged(64, ge=1)
    placement: Literal["code", "paper"] = "code"


def trainable(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def with_optimizer(model: torch.nn.Module, args: LorettaArgs, seed: int, variant: str):
    """AdamW (LoRETTA as published) or the ZO estimator (MeZO core) over the trainable tensors."""
    if args.optimizer == "adamw":
        return AdamWOver(model, trainable(model), args.lr, args.weight_decay, variant + "+adamw")
    method = mezo.MeZO(model, mezo.Args(lr=args.lr, eps=args.eps, weight_decay=args.weight_decay,
                                        queries=args.queries), seed)
    method.variant = variant + f"+zo-q{args.queries}"
    return method


def build(model: torch.nn.Module, args: Args, seed: int):
    sites = inject_tt_adapters(model, args.rank, args.placement, args.bottleneck, args.contraction,
                               ADAPTER_PRESETS_64 if args.modes == "preset" else None, train_norms=args.train_norms)
    variant = (f"placement-{args.placement}+tt-r{args.rank}-{args.contraction}-{args.modes}"
               + ("+norms" if args.train_norms else "+norms-frozen"))
    method = with_optimizer(model, args, seed, variant)
    method.details = {"adapters": len(sites)}
    return method
