"""LoRETTA_adp (Yang et al., NAACL 2024): tensorized (TT) bottleneck adapters, AdamW or ZO.

Same adapters and placement code as AdaZeta (methods/_tt_adapters.py), following
shared/reference/adazeta-and-loretta.md §2: down TT hidden → 64 → ReLU → up TT, bias,
s = 1, LoRETTA's TT shapes, the package's full-reconstruction contraction.
- ``optimizer: adamw`` is LoRETTA as published (lr 1e-4), trained as its HF Trainer ran
  (methods/_fo.py: mixed precision on a half-precision base, linear decay, clipping 1.0);
  ``zo`` runs the multi-query ZO estimator of methods/_zo.py over the same tensors
  (lr 1e-4, ε 1e-3, fixed Q, constant LR as MeZO's trainer; the FO settings do not apply).
- TT shapes (``modes: preset``) in the package's order: the up projection reuses the
  down projection's list (loretta/utils/tensor_util.py), which the sequential contraction
  allows; the parallel ones need the input modes first (AdaZeta's reversed list).
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

from zobench.api import TrainingPlan, ranged
from zobench.methods import mezo
from zobench.methods._fo import FirstOrderArgs, adamw_over, model_dtype
from zobench.methods._tt_adapters import ADAPTER_PRESETS_64, inject_tt_adapters
from zobench.methods._zo import LossDtype

VERSION = "2"


@dataclasses.dataclass
class LorettaArgs(FirstOrderArgs):
    """What LoRETTA adp and rep share: TT contraction and shapes, norms, and the optimizer
    (precision, lr_schedule and max_grad_norm apply to adamw only)."""

    lr: float = ranged(1e-4, gt=0)
    weight_decay: float = ranged(0.0, ge=0)
    contraction: Literal["sequential", "parallel", "groups-3", "groups-4"] = "sequential"
    modes: Literal["preset", "auto"] = "preset"
    train_norms: bool = True
    optimizer: Literal["adamw", "zo"] = "adamw"
    eps: float = ranged(1e-3, gt=0)  # zo only
    queries: int = ranged(1, ge=1)  # zo only
    loss_dtype: LossDtype = "fp32"  # zo only


@dataclasses.dataclass
class Args(LorettaArgs):
    rank: int = ranged(8, ge=1)  # TT rank
    bottleneck: int = ranged(64, ge=1)
    placement: Literal["code", "paper"] = "code"


def trainable(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def with_optimizer(model: torch.nn.Module, args: LorettaArgs, seed: int, variant: str,
                   plan: TrainingPlan | None, dtype: torch.dtype):
    """AdamW (LoRETTA as published) or the ZO estimator (MeZO core) over the trainable tensors.

    ``dtype``: the model's dtype before the (fp32) adapters went in."""
    if args.optimizer == "adamw":
        return adamw_over(model, trainable(model), args.lr, args.weight_decay, args, plan, variant + "+adamw", dtype)
    method = mezo.MeZO(model, mezo.Args(lr=args.lr, eps=args.eps, weight_decay=args.weight_decay,
                                        queries=args.queries, loss_dtype=args.loss_dtype), seed)
    method.variant = (variant + f"+z-{method.directions.generator}+zo-q{args.queries}"
                      + ("+loss-in-model-dtype" if args.loss_dtype == "model" else ""))
    return method


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None):
    dtype = model_dtype(model)
    sites = inject_tt_adapters(model, args.rank, args.placement, args.bottleneck, args.contraction,
                               ADAPTER_PRESETS_64 if args.modes == "preset" else None, train_norms=args.train_norms,
                               reverse_up=False)
    variant = (f"placement-{args.placement}+tt-r{args.rank}-{args.contraction}-{args.modes}"
               + ("+norms" if args.train_norms else "+norms-frozen"))
    method = with_optimizer(model, args, seed, variant, plan, dtype)
    method.details = {**method.details, "adapters": len(sites)}
    return method
