"""MeZO-LoRA: MeZO-SGD over the LoRA adapter tensors only, placed exactly as `lora` places them.

As in MeZO's code, the ZO step perturbs whatever requires grad, which after injection is
the adapters alone. Defaults are the papers' (Table 16, maintainers' issue #7): lr 1e-4, ε 1e-2.
``adapter_dtype``: ``model`` (default) is MeZO's own LoRA (adapters in the fp16 model's
dtype); ``fp32`` is AdaZeta's MeZO-LoRA baseline on its bf16 Llama-2 (fp32 adapters, the
input cast to fp32). In bf16 one perturb/restore cycle moves the adapters by ~1e-4 rms,
the size of a real update at lr 1e-4; in fp32 by ~1e-8 (the record's restore_drift_*).
The learning rate is constant, as in both codes.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import TrainingPlan, ranged
from zobench.methods import mezo
from zobench.methods._lora import inject_lora
from zobench.methods._zo import LossDtype

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-4, gt=0)
    eps: float = ranged(1e-2, gt=0)
    weight_decay: float = ranged(0.0, ge=0)
    rank: int = ranged(8, ge=1)
    alpha: int = ranged(16, gt=0)
    targets: str = "qv"
    queries: int = ranged(1, ge=1)
    fused_update: bool = True
    restore: Literal["inplace", "snapshot"] = "inplace"  # snapshot costs 1× the adapters only
    adapter_dtype: Literal["model", "fp32"] = "model"
    loss_dtype: LossDtype = "fp32"
    generator: Literal["counter-philox", "torch"] = "counter-philox"
    pipeline: bool = False
    flat_buffer: bool = True  # the adapters in one buffer: a z pass is ≤ 2 launches, not 2 per adapted module


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> mezo.MeZO:
    inject_lora(model, args.rank, args.alpha, args.targets, args.adapter_dtype)
    zo_args = mezo.Args(lr=args.lr, eps=args.eps, weight_decay=args.weight_decay, queries=args.queries,
                        fused_update=args.fused_update, restore=args.restore, generator=args.generator,
                        pipeline=args.pipeline, flat_buffer=args.flat_buffer and args.generator == "counter-philox",
                        loss_dtype=args.loss_dtype)
    method = mezo.MeZO(model, zo_args, seed)
    method.variant += f"+lora-r{args.rank}-a{args.alpha}-{args.targets}+adapters-{args.adapter_dtype}"
    return method
