"""LoRETTA_rep: a LoRA whose A and B are bias-free tensor-train layers, AdamW or ZO.

y = W₀x + (α/r)·TT_B(TT_A(dropout(x))) on the attention query and value projections
(shared/reference/adazeta-and-loretta.md §3): r = 8 (the LoRA bottleneck), α = 16, TT
rank 8, lora dropout 0.05, LoRETTA's TT shapes (TENSOR_SHAPE[8][hidden], the same list for
A and B as in the package). Both TTs are
random at init, so ΔW ≠ 0 at the start, as in the code (the paper's "noise-reduction"
init is absent there). The reference runs the TT path under fp16 autocast; here it runs
in fp32 (the base keeps its own dtype). ``train_norms`` (default, as run.py does) makes
every norm trainable: Llama-2-7B then has 516,096 trainable parameters ("0.51M").
AdamW runs as the HF Trainer ran it (methods/_fo.py); ZO as in loretta_adp.
"""

from __future__ import annotations

import dataclasses

import torch

from zobench.api import TrainingPlan, ranged
from zobench.methods._fo import model_dtype
from zobench.methods._lora import target_modules
from zobench.methods._tt import LORA_PRESETS_8, TTLinear, tt_modes
from zobench.methods._tt_adapters import is_norm, set_submodule
from zobench.methods.loretta_adp import LorettaArgs, with_optimizer

VERSION = "2"


@dataclasses.dataclass
class Args(LorettaArgs):
    lora_rank: int = ranged(8, ge=1)
    alpha: int = ranged(16, gt=0)
    tt_rank: int = ranged(8, ge=1)
    dropout: float = ranged(0.05, ge=0, lt=1)
    targets: str = "qv"


class TTLoRALinear(torch.nn.Module):
    """base(x) + scale·B(A(dropout(x))), A and B bias-free TT layers (fp32)."""

    def __init__(self, base: torch.nn.Linear, args: Args):
        super().__init__()
        preset = LORA_PRESETS_8 if args.modes == "preset" and args.lora_rank == 8 else None
        device = base.weight.device
        self.base = base
        self.lora_A = TTLinear(base.in_features, args.lora_rank, tt_modes(base.in_features, args.lora_rank, preset),
                               args.tt_rank, bias=False, contraction=args.contraction, device=device)
        self.lora_B = TTLinear(args.lora_rank, base.out_features,
                               tt_modes(args.lora_rank, base.out_features, preset, reverse_up=False),
                               args.tt_rank, bias=False, contraction=args.contraction, device=device)
        self.dropout = torch.nn.Dropout(args.dropout)
        self.scale = args.alpha / args.lora_rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = self.lora_B(self.lora_A(self.dropout(x.to(torch.float32))))
        return self.base(x) + (self.scale * delta).to(x.dtype)


def inject_tt_lora(model: torch.nn.Module, args: Args) -> list[str]:
    names = target_modules(model, args.targets)
    for p in model.parameters():
        p.requires_grad_(False)
    sites = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.split(".")[-1] in names]
    if not sites:
        raise ValueError(f"no linear modules named {names} in {type(model).__name__}")
    for name in sites:
        set_submodule(model, name, TTLoRALinear(model.get_submodule(name), args))
    for name, p in model.named_parameters():
        if ".lora_" in name or (args.train_norms and is_norm(name)):
            p.requires_grad_(True)
    return sites


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None):
    dtype = model_dtype(model)
    sites = inject_tt_lora(model, args)
    variant = (f"tt-lora-r{args.lora_rank}-a{args.alpha}-tt{args.tt_rank}-{args.targets}-{args.contraction}-{args.modes}"
               + ("+norms" if args.train_norms else "+norms-frozen"))
    method = with_optimizer(model, args, seed, variant, plan, dtype)
    method.details = {**method.details, "lora_modules": len(sites)}
    return method
