"""ZO-Adam (ZO-Bench, Zhang et al. ICML 2024): MeZO's estimate c·z fed to torch Adam.

Follows ZO-Bench/ZO-LLM zo-bench/trainer.py (``--trainer zo_adam``), see
shared/reference/newer-zo-methods.md §7.1, §7.5: torch.optim.Adam(lr) with betas 0.9/0.999,
eps 1e-8, no weight decay, fed grad = c·z regenerated per tensor, one tensor at a time. m and v
are dense (+2× the trainable tensors), in the param dtype in the official code (fp16/bf16 in
the sweeps, where v = g² can under- or overflow) or fp32 (``state_dtype``). Code and paper agree.
"""

from __future__ import annotations

import dataclasses

import torch

from zobench.api import TrainingPlan
from zobench.methods._zo_opt import Adam, StateDtype, ZOBenchStep, state_bytes

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = 1e-6  # ZO-Bench FT grid {1e-5 … 1e-8} (13B/7B); OPT-1.3B {1e-4 … 1e-8}
    eps: float = 1e-3  # grid {1e-2, 1e-3, 1e-4}
    state_dtype: StateDtype = "param"


class ZOAdam(ZOBenchStep):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        optimizer = Adam(args.lr, state_dtype=args.state_dtype)
        super().__init__(model, seed, args.eps, optimizer, lambda c, z: c * z)
        self.args = args
        self.forwards_last_step = 2
        self.variant = f"code-torch-adam+state-{args.state_dtype}+fused-restore-update"
        self.details = {"state_bytes": state_bytes(self.params, optimizer.copies, args.state_dtype),
                        "state": "Adam m, v"}


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> ZOAdam:
    return ZOAdam(model, args, seed)
