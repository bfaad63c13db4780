"""MeZO-SVRG (Gautam et al., ICML 2024): MeZO with an anchor estimate over a large batch every q steps.

Follows amazon-science/mezo_svrg @ 002e156 models/llm_module.py ``training_step_MeZO_SVRG``
(L382–L445) and finetune_llm.py (L264–L360), see shared/reference/newer-zo-methods.md §5.
Iteration k (counted from 0; the harness's mini-batch arrives every step):
- k % q == 0, the anchor step: c from L(θ±εz) on the anchor (the whole training split in
  ``batch_size`` chunks, or ``anchor_batches`` random mini-batches), the dense estimate
  g̃ = c·z is **stored** (+1× the trainable tensors), θ ← θ − lr_full·g̃;
- otherwise, ``variant: official`` (the code): the "snapshot" is a list copy of references, so
  both inner estimates are taken at the live θ with independent seeds:
  θ ← θ − lr·c₁z₁ (first estimate), θ ← θ + lr·c₂z₂ (second, after the first update),
  θ ← θ − lr·g̃;
- ``variant: paper``: a real snapshot θ̄ (a copy at the anchor step, another +1×) and one seed z
  for both inner estimates: θ ← θ − lr·((c(θ) − c(θ̄))·z + g̃), the SVRG control variate;
- a logging forward every step on that step's batch (the anchor at anchor steps),
  ``log_forward: official``; its losses drive the anneal rule;
- anneal (both variants), checked at epoch starts once more than 4 epochs of losses exist:
  with W = the batches per epoch, if mean(last W) / mean(losses[−3W:−2W]) > 1.05 then
  lr_full ← max(lr_full/anneal, 1e-5) and lr ← max(lr/anneal, 1e-6). The floors *raise* a
  smaller LR (the code's; kept).
Forwards (in mini-batch units; the harness counts them as they run): anchor steps 2·(n/b) plus
n/b logging, inner steps 4 plus 1 (the official ``query`` list records 2 per step).
Outside a run (tests, ``inspect``) no extra batches exist and the anchor is the step's batch
(recorded in ``variant``). ``lr`` is the mini-batch LR (the code's ``lr_mezosvrg_mb``) so
the harness's drift check sees the LR of most steps.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Literal

import torch

from zobench.api import Closure, DriftProbed, TrainingPlan
from zobench.methods._zo import DenseGaussian, draw_step_seed, gaussian_directions, two_point
from zobench.methods._zo_opt import (StateDtype, dense_drift_probe, estimate, named_trainable, restore_and_apply,
                                     state_bytes, state_dtype_for)

VERSION = "1"
LR_FULL_FLOOR, LR_FLOOR = 1e-5, 1e-6  # llm_module.py L392–L393
ANNEAL_RATIO = 1.05
# finetune_llm_full.sh: n = 512 examples at batch 64, for builds outside a run.
REFERENCE_PLAN = TrainingPlan(train_size=512, batch_size=64, total_steps=64_000)


@dataclasses.dataclass
class Args:
    lr: float = 1e-6  # η₂, mini-batch steps: run_mnli_zosvrg_full.sh grid {1e-5, 1e-6}
    lr_full: float = 1e-4  # η₁, anchor steps: grid {1e-5, 1e-4}
    eps: float = 1e-3  # perturbation_scale default
    q: int = 2  # an anchor step every q iterations (the scripts: 2)
    anneal: float = 5.0  # grid {4, 5}; the floors still apply at 1
    anchor_batches: int = 0  # 0: the whole training split (the code's full batch); K: K random mini-batches
    variant: Literal["official", "paper"] = "official"
    state_dtype: StateDtype = "param"
    log_forward: Literal["official", "none"] = "official"


class MeZOSVRG(DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan):
        if args.q < 1:
            raise ValueError("q must be >= 1")
        self.params = [p for _, p in named_trainable(model)]
        self.args = args
        self.lr, self.lr_full = args.lr, args.lr_full  # annealed
        self.extra = plan.extra_batches
        self.epoch_batches = plan.steps_per_epoch
        # Mini-batch forwards per anchor evaluation: the split in batch_size chunks, K batches, or the step's batch.
        self.anchor_chunks = 1 if self.extra is None else args.anchor_batches or plan.steps_per_epoch
        self.iteration = 0
        self.logged: list[float] = []
        self.anchor_grad: list[torch.Tensor] | None = None  # g̃, created at the first anchor step
        self.snapshot: list[torch.Tensor] | None = None  # θ̄, paper variant only
        self.seed_source = torch.Generator().manual_seed(seed)
        self.forwards_last_step = (2 + (args.log_forward == "official")) * self.anchor_chunks  # the first step's
        anchor = "step-batch" if self.extra is None else f"{args.anchor_batches}-batches" if args.anchor_batches else "full"
        self.variant = (f"{args.variant}+anchor-{anchor}+q{args.q}"
                        f"+anneal{args.anneal:g}+state-{args.state_dtype}+log-forward-{args.log_forward}")
        copies = 1 if args.variant == "official" else 2
        self.details = {"state_bytes": state_bytes(self.params, copies, args.state_dtype),
                        "state": "g̃" if copies == 1 else "g̃ and the snapshot θ̄"}
        model.eval()

    def maybe_anneal(self) -> None:
        """llm_module.py L387–L394: at epoch starts, once more than 2w = 4 epochs of losses exist."""
        w = self.epoch_batches
        if len(self.logged) > 4 * w and self.iteration % w == 0:
            recent = statistics.fmean(self.logged[-w:])
            earlier = statistics.fmean(self.logged[-3 * w : -2 * w])
            if recent / earlier > ANNEAL_RATIO:
                self.lr_full = max(self.lr_full / self.args.anneal, LR_FULL_FLOOR)
                self.lr = max(self.lr / self.args.anneal, LR_FLOOR)

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        self.maybe_anneal()
        log = 1 if self.args.log_forward == "official" else 0
        if self.iteration % self.args.q == 0:
            batch_closure = self.extra.anchor(self.args.anchor_batches) if self.extra is not None else closure
            loss = self.anchor_step(batch_closure)
            self.forwards_last_step = (2 + log) * self.anchor_chunks
        else:
            batch_closure = closure
            loss = self.inner_step(closure) if self.args.variant == "official" else self.inner_step_paper(closure)
            self.forwards_last_step = 4 + log
        if log:
            loss = batch_closure().item()
        self.logged.append(loss)
        self.iteration += 1
        return loss

    def anchor_step(self, anchor: Closure) -> float:
        seed = draw_step_seed(self.seed_source)
        loss, c = estimate(self.params, anchor, seed, self.args.eps)
        if self.anchor_grad is None:
            self.anchor_grad = [torch.empty_like(p, dtype=state_dtype_for(p, self.args.state_dtype))
                                for p in self.params]
        if self.args.variant == "paper":
            self.save_snapshot(seed)
        # The code casts c to the model dtype before forming g̃ = c·z.
        c_model = torch.tensor(c, dtype=self.params[0].dtype).item() if self.params else c

        def apply(i: int, p: torch.Tensor, z: torch.Tensor) -> None:
            self.anchor_grad[i].copy_(c_model * z)
            p.sub_(self.anchor_grad[i] * self.lr_full)

        restore_and_apply(self.params, seed, self.args.eps, apply)
        return loss

    def save_snapshot(self, seed: int) -> None:
        """θ̄ ← θ, taken while θ is still at θ−εz: the copy adds +εz back (same rounding as the restore)."""
        if self.snapshot is None:
            self.snapshot = [torch.empty_like(p) for p in self.params]
        for s, p, z in zip(self.snapshot, self.params, gaussian_directions(self.params, seed)):
            s.copy_(p).add_(z, alpha=self.args.eps)

    def inner_step(self, closure: Closure) -> float:
        """The code: −lr·c₁z₁ at θ, +lr·c₂z₂ at the updated θ (independent seeds), −lr·g̃."""
        eps = self.args.eps
        seed1 = draw_step_seed(self.seed_source)
        loss, c1 = estimate(self.params, closure, seed1, eps)
        restore_and_apply(self.params, seed1, eps, lambda i, p, z: p.add_(z * c1, alpha=-self.lr))
        seed2 = draw_step_seed(self.seed_source)
        _, c2 = estimate(self.params, closure, seed2, eps)

        def apply(i: int, p: torch.Tensor, z: torch.Tensor) -> None:
            p.add_(z * c2, alpha=self.lr)
            p.sub_(self.anchor_grad[i] * self.lr)

        restore_and_apply(self.params, seed2, eps, apply)
        return loss

    def inner_step_paper(self, closure: Closure) -> float:
        """The paper: one z for ĝ_B(θ) and ĝ_B(θ̄); θ ← θ − lr·((c − c̄)·z + g̃)."""
        eps = self.args.eps
        seed = draw_step_seed(self.seed_source)
        losses, (c,) = two_point(DenseGaussian(self.params), closure, [seed], eps)
        self.swap_snapshot()
        try:
            _, (c_bar,) = two_point(DenseGaussian(self.params), closure, [seed], eps)
        finally:
            self.swap_snapshot()
        restore_and_apply(self.params, seed, 0.0,
                          lambda i, p, z: p.sub_((z * (c - c_bar) + self.anchor_grad[i]) * self.lr))
        return losses[0]

    def swap_snapshot(self) -> None:
        """θ ↔ θ̄ by exchanging storages (no copy): the model's forwards then see θ̄."""
        for p, s in zip(self.params, self.snapshot):
            p.data, s.data = s.data, p.data

    def drift_probe(self) -> dict[str, float]:
        return dense_drift_probe(self.params, self.args.eps)


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> MeZOSVRG:
    return MeZOSVRG(model, args, seed, plan or REFERENCE_PLAN)
