"""ZO-SGD-MMT (ZO-Bench, Zhang et al. ICML 2024): MeZO's estimate into torch SGD with momentum.

Follows ZO-Bench/ZO-LLM zo-bench/trainer.py (``--trainer zo_sgd --momentum 0.9``), see
shared/reference/newer-zo-methods.md §7.1, §7.3: torch.optim.SGD(lr, momentum=μ), dampening 0,
no Nesterov, fed grad = c·z one tensor at a time: b₁ = g₁, b_t = μ·b_{t−1} + g_t (no (1−μ)
factor), θ ← θ − lr·b_t. The buffer b is dense (+1× the trainable tensors), in the param dtype
in the official code (``state_dtype: param``) or fp32. Code and paper agree.
"""

from __future__ import annotations

import dataclasses

import torch

from zobench.api import TrainingPlan
from zobench.methods._zo_opt import Momentum, StateDtype, ZOBenchStep, state_bytes

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = 1e-7  # ZO-Bench FT grid {1e-5 … 1e-8}; μ 0.9 multiplies the step ~10×, so one notch below MeZO's 1e-6
    eps: float = 1e-3  # grid {1e-2, 1e-3, 1e-4}
    momentum: float = 0.9
    state_dtype: StateDtype = "param"


class ZOMomentum(ZOBenchStep):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        optimizer = Momentum(args.lr, args.momentum, args.state_dtype)
        super().__init__(model, seed, args.eps, optimizer, lambda c, z: c * z)
        self.args = args
        self.forwards_last_step = 2
        self.variant = f"code-torch-sgd-momentum{args.momentum:g}+state-{args.state_dtype}+fused-restore-update"
        self.details = {"state_bytes": state_bytes(self.params, optimizer.copies, args.state_dtype),
                        "state": "momentum buffer"}


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> ZOMomentum:
    return ZOMomentum(model, args, seed)
