"""AdaZeta (Yang et al., EMNLP 2024): multi-query ZO-SGD over tensor-train adapters, Q per epoch.

Follows yifanycc/AdaZeta large_models/trainer_adazeta.py (zo_step/zo_update), see
shared/reference/adazeta-and-loretta.md §4:
- only the TT adapters are trainable (norms and head frozen); the base may be bf16, the
  adapters stay fp32; ZO forwards in eval mode;
- per step, Q two-point queries with seed-regenerated z (the MeZO core, methods/_zo.py),
  then θ ← θ − lr·(mean_q g_q·z_q + wd·θ), no decay for biases and norms; lr 1e-4,
  ε 1e-3, wd 0.01;
- Q follows the adaptive schedule (methods/_query_schedule.py), ``code`` by default.
Where the paper and the code disagree, ``schedule`` and ``placement`` pick the side
(``code`` is the default: the code as the paper's experiments ran); both go into the
record's variant. Rank 5 is the experiments' RANK (run.py's own default is 8).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import Closure, DriftProbed, Flushable, TrainingPlan, ranged
from zobench.methods import mezo
from zobench.methods._query_schedule import make_schedule
from zobench.methods._tt_adapters import ADAZETA_PRESETS_64, inject_tt_adapters
from zobench.methods._zo import LossDtype

VERSION = "1"
# The paper's Llama setting (1000 examples, batch 16, 10k steps), for builds outside a run.
REFERENCE_PLAN = TrainingPlan(train_size=1000, batch_size=16, total_steps=10_000)


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-4, gt=0)
    eps: float = ranged(1e-3, gt=0)
    weight_decay: float = ranged(0.01, ge=0)
    rank: int = ranged(5, ge=1)  # TT rank
    bottleneck: int = ranged(64, ge=1)
    placement: Literal["code", "paper"] = "code"
    contraction: Literal["sequential", "parallel", "groups-3", "groups-4"] = "parallel"
    modes: Literal["preset", "auto"] = "preset"  # the reference's TT shapes where it has them
    init: Literal["reference", "zero"] = "reference"  # zero: zero-output start (an ablation)
    schedule: Literal["code", "paper", "fixed"] = "code"
    queries: int = ranged(1, ge=1)  # Q for schedule "fixed"
    q_max: int = ranged(0, ge=0)  # 0: the schedule's own cap (code 15, paper 20)
    fused_update: bool = True
    restore: Literal["inplace", "snapshot"] = "inplace"
    generator: Literal["counter-philox", "torch"] = "counter-philox"
    pipeline: bool = False
    flat_buffer: bool = True  # all adapter tensors in one buffer: a z pass is ≤ 2 launches, not one per tensor
    loss_dtype: LossDtype = "fp32"


class AdaZeta(Flushable, DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan):
        self.sites = inject_tt_adapters(model, args.rank, args.placement, args.bottleneck, args.contraction,
                                        ADAZETA_PRESETS_64 if args.modes == "preset" else None, args.init)
        self.schedule = make_schedule(args.schedule, plan, args.q_max, args.queries)
        self.args = args
        self.zo = mezo.MeZO(model, mezo.Args(lr=args.lr, eps=args.eps, weight_decay=args.weight_decay,
                                             fused_update=args.fused_update, restore=args.restore,
                                             generator=args.generator, pipeline=args.pipeline,
                                             flat_buffer=args.flat_buffer and args.generator == "counter-philox",
                                             loss_dtype=args.loss_dtype),
                            seed)
        self.params = self.zo.params
        self.step_index = 0
        self.forwards_last_step = 2 * self.schedule.queries(0)
        self.variant = (f"schedule-{self.schedule.describe()}+placement-{args.placement}+tt-r{args.rank}"
                        f"-{args.contraction}-{args.modes}" + ("+zero-init" if args.init == "zero" else "")
                        + ("+snapshot-restore" if args.restore == "snapshot" else "")
                        + ("+pipeline" if args.pipeline else "") + ("+flat-buffer" if self.zo.args.flat_buffer else "")
                        + f"+z-{self.zo.directions.generator}"
                        + ("+loss-in-model-dtype" if args.loss_dtype == "model" else ""))
        self.details = {"adapters": len(self.sites), "schedule": dataclasses.asdict(self.schedule),
                        "plan": {"train_size": plan.train_size, "batch_size": plan.batch_size,
                                 "total_steps": plan.total_steps}, **self.zo.details}  # not extra_batches: live closures

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        queries = self.schedule.queries(self.step_index)
        self.forwards_last_step = 2 * queries
        self.step_index += 1
        return self.zo.step(closure, queries=queries)

    def flush(self) -> None:
        self.zo.flush()

    def drift_probe(self) -> dict[str, float]:
        return self.zo.drift_probe()


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> AdaZeta:
    return AdaZeta(model, args, seed, plan or REFERENCE_PLAN)
