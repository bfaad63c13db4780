"""ZO-SGD-Sign (ZO-Bench, Zhang et al. ICML 2024): step along the sign of the ZO estimate.

Follows ZO-Bench/ZO-LLM zo-bench/trainer.py (``--trainer zo_sign_opt``), see
shared/reference/newer-zo-methods.md §7.1–§7.2:
- code (``sign: scalar``): grad = sign(c)·z, the scalar sign of the projected gradient times the
  Gaussian z (the elementwise sign(c·z) is only a comment there, L1055–L1060);
- the optimizer is whatever HF built, since the sweeps never pass ``--optimizer``: transformers'
  AdamW (``base_optimizer: adamw``, +2× the trainable tensors in state). With ``sgd`` the step
  is MeZO with |c| dropped: θ ← θ − lr·sign(c)·z;
- paper (``sign: elementwise``, the ZO-signSGD lineage): θ ← θ − lr·sign(c·z) elementwise.
Every choice and the state dtype go into ``variant``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import TrainingPlan
from zobench.methods._zo_opt import SGD, HFAdamW, StateDtype, ZOBenchStep, hf_decay_mask, named_trainable, state_bytes

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = 1e-6  # ZO-Bench FT grid {1e-5, 1e-6, 1e-7, 1e-8}
    eps: float = 1e-3  # grid {1e-2, 1e-3, 1e-4}
    base_optimizer: Literal["adamw", "sgd"] = "adamw"  # adamw: what the official sweeps ran
    sign: Literal["scalar", "elementwise"] = "scalar"  # scalar: the code; elementwise: the paper
    weight_decay: float = 0.0  # HF AdamW's only (the sweeps: 0)
    state_dtype: StateDtype = "param"


def scalar_sign(c: float) -> float:
    return float((c > 0) - (c < 0))  # np.sign: 0 for c == 0


class ZOSign(ZOBenchStep):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        names = [n for n, _ in named_trainable(model)]
        optimizer = (HFAdamW(args.lr, args.weight_decay, hf_decay_mask(model, names), args.state_dtype)
                     if args.base_optimizer == "adamw" else SGD(args.lr))
        gradient = ((lambda c, z: scalar_sign(c) * z) if args.sign == "scalar"
                    else (lambda c, z: torch.sign(c * z)))
        super().__init__(model, seed, args.eps, optimizer, gradient)
        self.args = args
        self.forwards_last_step = 2
        form = "code-sign(c)·z" if args.sign == "scalar" else "paper-sign(c·z)"
        self.variant = f"{form}+{'hf-adamw' if args.base_optimizer == 'adamw' else 'sgd'}" \
                       f"+state-{args.state_dtype}+fused-restore-update"
        self.details = {"state_bytes": state_bytes(self.params, optimizer.copies, args.state_dtype),
                        "state": "AdamW m, v" if optimizer.copies else "none"}


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> ZOSign:
    return ZOSign(model, args, seed)
