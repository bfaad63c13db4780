"""HiZOO (Zhao et al., ICLR 2025): SPSA scaled by a diagonal "Hessian" H kept as optimizer state.

Follows Yanjun-Zhao/HiZOO, see shared/reference/newer-zo-methods.md §2. Three estimators,
recorded in ``variant``:
- ``code2025`` (HEAD 4f99055 trainer.py L475–L516, the default): perturb θ ± ε·z/√H; then per
  tensor H ← (1−α)·H + (|L₊ + L₋ − 2L₀|·(H·z·z))·α/(2ε²) and θ ← θ − lr·(c·z/√H_new + wd·θ),
  with c = (L₊−L₋)/2ε and the *updated* H; decay on every tensor (biases and norms too);
- ``code2024`` (f5f0c45 large_models/trainer.py L632–L675): the stored vector S is used as an
  inverse-Hessian scale but updated with a Hessian-scale target: perturb θ ± ε·√S·z,
  S ← (1−α)·S + α·|ΔL₂|·(z·z/S)/(2ε²), θ ← θ − lr·(c·z·√S_new + wd·θ);
- ``paper`` (Eq. 8–9, as the OpenReview reviews restate them; not checked against the PDF): in
  H = Σ⁻¹ coordinates H ← (1−α)·H + α·|ΔL₂/(2ε²)·H·(z² − 1)| and the step uses the Σ^{1/2} = H^{-1/2}
  that perturbed: θ ← θ − lr·(c·z/√H_old + wd·θ).
H starts at ones in the param dtype (``state_dtype: param``, the official code) or fp32. In fp16 and
bf16 with the README's α = 1e-8 the increment underflows and (1−α)·H rounds back to H, so H stays
exactly 1 (§2.6): HiZOO is then MeZO plus two forwards. The official step spends a 4th forward
only to log L(θ_new) (``log_forward: official``; ``none`` logs L₀ and saves it). Forwards: 4 / 3.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import Closure, DriftProbed, TrainingPlan
from zobench.methods._zo import draw_step_seed, gaussian_directions
from zobench.methods._zo_opt import StateDtype, dense_drift_probe, named_trainable, state_bytes, state_dtype_for

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = 1e-6  # README (HEAD), OPT-13B WSC FT
    eps: float = 1e-3
    alpha: float = 1e-8  # Hessian smoothing, README "constant1e-8" (HiZOO.sh's default constant0 freezes H)
    weight_decay: float = 0.0  # HiZOO.sh WEIGHT_DECAY 0; applied to all tensors when set
    estimator: Literal["code2025", "code2024", "paper"] = "code2025"
    state_dtype: StateDtype = "param"
    log_forward: Literal["official", "none"] = "official"


class HiZOO(DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        self.params = [p for _, p in named_trainable(model)]
        self.args = args
        self.hessian: list[torch.Tensor] | None = None  # created at the first step (train-phase memory)
        self.seed_source = torch.Generator().manual_seed(seed)
        self.forwards_last_step = 4 if args.log_forward == "official" else 3
        self.variant = f"{args.estimator}+state-{args.state_dtype}+log-forward-{args.log_forward}"
        self.details = {"state_bytes": state_bytes(self.params, 1, args.state_dtype), "state": "diagonal H"}
        model.eval()

    def scaled(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """z times the per-element scale: z/√H (code2025, paper) or z·√S (code2024)."""
        return z * h.sqrt() if self.args.estimator == "code2024" else z / h.sqrt()

    @torch.no_grad()
    def perturb(self, seed: int, eps: float) -> None:
        for p, z, h in zip(self.params, gaussian_directions(self.params, seed), self.hessian):
            p.add_(self.scaled(z, h), alpha=eps)

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        if self.hessian is None:
            self.hessian = [torch.ones_like(p, dtype=state_dtype_for(p, self.args.state_dtype)) for p in self.params]
        eps = self.args.eps
        seed = draw_step_seed(self.seed_source)
        loss0 = closure().item()
        self.perturb(seed, eps)
        loss_pos = closure().item()
        self.perturb(seed, -2 * eps)
        loss_neg = closure().item()
        self.restore_and_update(seed, (loss_pos - loss_neg) / (2 * eps), abs(loss_pos + loss_neg - 2 * loss0))
        if self.args.log_forward == "official":
            return closure().item()
        return loss0

    def restore_and_update(self, seed: int, c: float, curvature: float) -> None:
        """One pass over z: restore θ (+ε·scale(H_old)·z), update H, then θ."""
        a = self.args
        for p, z, h in zip(self.params, gaussian_directions(self.params, seed), self.hessian):
            p.add_(self.scaled(z, h), alpha=a.eps)
            if a.estimator == "paper":
                direction = self.scaled(z, h)  # the Σ^{1/2}z that perturbed
                increment = (h * (z * z - 1) * (curvature / (2 * a.eps**2))).abs_() * a.alpha  # from H_old
                h.mul_(1 - a.alpha).add_(increment)
            else:
                target = h * z * z if a.estimator == "code2025" else z * z / h
                h.mul_(1 - a.alpha).add_(target * curvature * a.alpha / (2 * a.eps**2))
                direction = self.scaled(z, h)  # the updated H, as both codes do
            grad = c * direction
            if a.weight_decay:
                grad.add_(p, alpha=a.weight_decay)
            p.sub_(grad * a.lr)

    def drift_probe(self) -> dict[str, float]:
        """At H = 1 (the start) the perturbation is MeZO's, so the probe is MeZO's cycle."""
        return dense_drift_probe(self.params, self.args.eps)


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> HiZOO:
    return HiZOO(model, args, seed)
