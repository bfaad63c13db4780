"""Forward-Grad (Baydin et al. 2022, as ZO-Bench runs it): one JVP along a random v, Δθ = −lr·(∇L·v)·v.

Follows ZO-Bench/ZO-LLM zo-bench/trainer.py ``forward_grad_step`` (L1352–L1437), see
shared/reference/newer-zo-methods.md §7.6:
- v ~ N(0, I) per trainable tensor, **stored** for the step (+1× the trainable tensors), here
  from the method's private generator;
- (L, ∇L·v) from ``torch.func.jvp`` of a ``functional_call`` with tangents v, under
  ``no_grad`` (forward-mode AD is unaffected; ``inference_mode`` would disable it, so the
  harness's closure never runs under it);
- θ ← θ − lr·(v·(∇L·v) + wd·θ) in place, weight decay skipped for names containing "bias",
  "layer_norm" or "layernorm" (MeZO's rule, the same substrings);
- one forward (a JVP pass, about 1.5–3× a plain forward in time, plus the tangent activations).
The closure hides the model call, so the JVP goes through a tiny wrapper module whose forward
runs the closure: ``functional_call`` on the wrapper swaps the model's parameters for the
JVP's dual tensors during the call (ZO-Bench's list-of-tensors primals broke on newer torch,
its issue #16; tuples here).
"""

from __future__ import annotations

import dataclasses

import torch
from torch.func import functional_call, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from zobench.api import Closure, TrainingPlan
from zobench.methods._zo import draw_step_seed, gaussian_directions
from zobench.methods._zo_opt import named_trainable, state_bytes
from zobench.methods.mezo import uses_decay

VERSION = "1"


@dataclasses.dataclass
class Args:
    lr: float = 5e-7  # ZO-Bench OPT-1.3B SST-2 FT grid {1e-5, 1e-6, 1e-7, 5e-7, 1e-8}: best 5e-7
    weight_decay: float = 0.0


class _RunClosure(torch.nn.Module):
    """A module whose forward is the harness's closure, so ``functional_call`` can reparametrise the model."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.closure: Closure | None = None

    def forward(self) -> torch.Tensor:
        return self.closure()


class ForwardGrad:
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        named = named_trainable(model)
        self.names = [f"model.{n}" for n, _ in named]
        self.params = [p for _, p in named]
        self.decay = [uses_decay(n) for n, _ in named]
        self.args = args
        self.runner = _RunClosure(model)
        self.seed_source = torch.Generator().manual_seed(seed)
        self.forwards_last_step = 1
        self.variant = "code-torch.func.jvp+stored-v+sdpa-math"
        self.details = {"state_bytes": state_bytes(self.params, 1, "param"), "state": "v (one step) + tangents"}
        model.eval()

    def directional_derivative(self, closure: Closure, tangents: tuple[torch.Tensor, ...]) -> tuple[float, float]:
        """(L(θ), ∇L(θ)·v) in one forward-mode pass."""
        def loss_at(*primals: torch.Tensor) -> torch.Tensor:
            return functional_call(self.runner, dict(zip(self.names, primals)), ())

        self.runner.closure = closure
        try:
            # No autograd graph (forward-mode AD still runs); the fused attention kernels have no
            # forward-AD formula, so attention takes SDPA's composite math path for the JVP.
            with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
                loss, derivative = jvp(loss_at, tuple(p.detach() for p in self.params), tangents)
        finally:
            self.runner.closure = None
        return loss.item(), derivative.item()

    def step(self, closure: Closure) -> float:
        seed = draw_step_seed(self.seed_source)
        vs = tuple(gaussian_directions(self.params, seed))  # stored: +1× the trainable tensors
        loss, derivative = self.directional_derivative(closure, vs)
        lr, wd = self.args.lr, self.args.weight_decay
        with torch.no_grad():
            for p, v, decay in zip(self.params, vs, self.decay):
                if decay and wd:
                    p.sub_(lr * (v * derivative + wd * p))
                else:
                    p.sub_(lr * (v * derivative))
        return loss


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> ForwardGrad:
    return ForwardGrad(model, args, seed)
