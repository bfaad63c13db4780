"""MeZO-LoRA: MeZO-SGD over the LoRA adapter tensors only, placed exactly as `lora` places them.

As in MeZO's code, the ZO step perturbs whatever requires grad, which after injection is
the adapters alone. Defaults are the papers' (Table 16, maintainers' issue #7): lr 1e-4, ε 1e-2.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.methods import mezo
from zobench.methods._lora import inject_lora

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = 1e-4
    eps: float = 1e-2
    weight_decay: float = 0.0
    rank: int = 8
    alpha: int = 16
    targets: str = "qv"
    queries: int = 1
    fused_update: bool = True
    restore: Literal["inplace", "snapshot"] = "inplace"  # snapshot costs 1× the adapters only
    generator: Literal["counter-philox", "torch"] = "counter-philox"
    pipeline: bool = False
    flat_buffer: bool = True  # the adapters in one buffer: a z pass is ≤ 2 launches, not 2 per adapted module


def build(model: torch.nn.Module, args: Args, seed: int) -> mezo.MeZO:
    inject_lora(model, args.rank, args.alpha, args.targets)
    zo_args = mezo.Args(lr=args.lr, eps=args.eps, weight_decay=args.weight_decay, queries=args.queries,
                        fused_update=args.fused_update, restore=args.restore, generator=args.generator,
                        pipeline=args.pipeline, flat_buffer=args.flat_buffer and args.generator == "counter-philox")
    method = mezo.MeZO(model, zo_args, seed)
    method.variant += f"+lora-r{args.rank}-a{args.alpha}-{args.targets}"
    return method
