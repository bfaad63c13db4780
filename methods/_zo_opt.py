"""Shared machinery of the ZO optimizer family: ZO-Bench's Sign / MMT / Cons / ZO-Adam, HiZOO, MeZO-SVRG.

What they share beyond MeZO's estimate (methods/_zo.py):
- named trainable tensors (some rules skip weight decay by name);
- optimizer state kept in the parameter dtype (the official code: torch and HF optimizers keep
  m, v, momentum, HiZOO's H in it) or in fp32 (``state_dtype``); several published quirks are
  pure fp16/bf16 rounding, so the choice is recorded in every variant;
- per-tensor optimizer updates fed a regenerated ZO gradient ĝ = c·z, one tensor at a time, as
  ZO-Bench does (set ``param.grad`` for one tensor, ``optimizer.step()``, drop the grad), so no
  dense gradient is ever stored;
- the last query's restore (+εz) done in the same pass over z as the update, as two separate
  in-place adds: z is generated once fewer per step and every operation rounds as unfused.

The optimizers are written out here rather than taken from torch.optim / transformers because
(a) ``state_dtype: fp32`` with fp16/bf16 weights has no equivalent there (torch keeps state in
the param dtype), (b) transformers' own ``AdamW`` (the one ZO-Bench's Sign and Cons sweeps ran,
``adamw_hf`` in transformers 4.28) was removed from transformers, and (c) the per-tensor streaming
needs no ``.grad`` bookkeeping. Their arithmetic follows torch's single-tensor code paths step
for step; tests/test_zo_family.py checks them against torch.optim.
Usage: ``opt = Adam(lr=1e-6, state_dtype="param"); opt.update(i, p, grad)``.
"""

from __future__ import annotations

import math
from typing import Callable, Literal, Protocol

import torch

from zobench.api import DriftProbed
from zobench.methods._zo import DenseGaussian, draw_step_seed, gaussian_directions, restore_drift, two_point

StateDtype = Literal["param", "fp32"]


def named_trainable(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def state_dtype_for(p: torch.Tensor, policy: StateDtype) -> torch.dtype:
    return p.dtype if policy == "param" else torch.float32


def state_bytes(params: list[torch.Tensor], copies: int, policy: StateDtype) -> int:
    """Bytes of ``copies`` state tensors shaped like every trainable tensor (expected, not measured)."""
    return copies * sum(p.numel() * torch.empty((), dtype=state_dtype_for(p, policy)).element_size()
                        for p in params)


class SGD:
    """torch.optim.SGD without momentum: θ ← θ − lr·g. No state."""

    copies = 0

    def __init__(self, lr: float, state_dtype: StateDtype = "param"):
        self.lr = lr

    def update(self, index: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        p.add_(grad, alpha=-self.lr)


class Momentum:
    """torch.optim.SGD(momentum=μ), dampening 0, no Nesterov: b₁ = g₁, b_t = μ·b_{t−1} + g_t, θ ← θ − lr·b_t."""

    copies = 1

    def __init__(self, lr: float, momentum: float = 0.9, state_dtype: StateDtype = "param"):
        self.lr, self.momentum, self.policy = lr, momentum, state_dtype
        self.buffers: dict[int, torch.Tensor] = {}

    def update(self, index: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        buf = self.buffers.get(index)
        if buf is None:  # created at the first step, as torch does: the state is part of the train phase
            buf = self.buffers[index] = grad.to(state_dtype_for(p, self.policy), copy=True)
        else:
            buf.mul_(self.momentum).add_(grad)
        p.add_(buf, alpha=-self.lr)


class Adam:
    """torch.optim.Adam (betas 0.9/0.999, eps 1e-8, no weight decay), its single-tensor arithmetic."""

    copies = 2

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 state_dtype: StateDtype = "param"):
        self.lr, self.betas, self.eps, self.policy = lr, betas, eps, state_dtype
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.steps: dict[int, int] = {}

    def moments(self, index: int, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if index not in self.state:
            dtype = state_dtype_for(p, self.policy)
            self.state[index] = (torch.zeros_like(p, dtype=dtype), torch.zeros_like(p, dtype=dtype))
            self.steps[index] = 0
        return self.state[index]

    def update(self, index: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        m, v = self.moments(index, p)
        grad = grad.to(m.dtype)
        self.steps[index] += 1
        step = self.steps[index]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1**step)
        denom = (v.sqrt() / math.sqrt(1 - beta2**step)).add_(self.eps)
        p.addcdiv_(m, denom, value=-step_size)


class HFAdamW(Adam):
    """transformers.AdamW as ``adamw_hf`` in transformers 4.28 (ZO-Bench's default optimizer):
    eps added to √v before the bias correction, which goes into the step size; decoupled weight
    decay after the step, skipped for biases and LayerNorm weights (``decay`` per tensor)."""

    def __init__(self, lr: float, weight_decay: float = 0.0, decay: list[bool] | None = None,
                 state_dtype: StateDtype = "param"):
        super().__init__(lr, (0.9, 0.999), 1e-8, state_dtype)
        self.weight_decay, self.decay = weight_decay, decay

    def update(self, index: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        m, v = self.moments(index, p)
        grad = grad.to(m.dtype)
        self.steps[index] += 1
        step = self.steps[index]
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = v.sqrt().add_(self.eps)
        step_size = self.lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        p.addcdiv_(m, denom, value=-step_size)
        if self.weight_decay > 0 and (self.decay is None or self.decay[index]):
            p.add_(p, alpha=-self.lr * self.weight_decay)


def hf_decay_mask(model: torch.nn.Module, names: list[str]) -> list[bool]:
    """HF Trainer 4.28's weight-decay rule: no decay for biases and ``nn.LayerNorm`` weights."""
    no_decay = {f"{module_name}.{name}" if module_name else name
                for module_name, module in model.named_modules() if isinstance(module, torch.nn.LayerNorm)
                for name, _ in module.named_parameters(recurse=False)}
    return [n not in no_decay and "bias" not in n for n in names]


@torch.no_grad()
def estimate(params: list[torch.Tensor], closure: Callable[[], torch.Tensor], seed: int,
             eps: float) -> tuple[float, float]:
    """MeZO's two-point estimate at θ; θ is left at θ−εz (the caller restores in its update pass).

    Returns (L(θ+εz), c) with c = (L₊ − L₋)/2ε as a Python float, as ZO-Bench's ``.item()``.
    """
    losses, grads = two_point(DenseGaussian(params), closure, [seed], eps, keep_last_perturbed=True)
    return losses[0], grads[0]


@torch.no_grad()
def restore_and_apply(params: list[torch.Tensor], seed: int, eps: float,
                      apply: Callable[[int, torch.Tensor, torch.Tensor], None]) -> None:
    """One pass over z(seed): θ ← θ + εz (the pending restore, if ``eps``), then ``apply(i, p, z)``."""
    for i, (p, z) in enumerate(zip(params, gaussian_directions(params, seed))):
        if eps:
            p.add_(z, alpha=eps)
        apply(i, p, z)


def dense_drift_probe(params: list[torch.Tensor], eps: float, seed: int = 12345) -> dict[str, float]:
    """Restore drift of one +εz, −2εz, +εz cycle on the real parameters (before training)."""
    directions = DenseGaussian(params)

    def cycle() -> None:
        directions.add_(seed, eps)
        directions.add_(seed, -2 * eps)
        directions.add_(seed, eps)

    return restore_drift(params, cycle)


class PerTensorOptimizer(Protocol):
    copies: int  # state tensors per trainable tensor

    def update(self, index: int, p: torch.Tensor, grad: torch.Tensor) -> None: ...


class ZOBenchStep(DriftProbed):
    """ZO-Bench's ``zo_step`` (zo-bench/trainer.py L1005–L1083): the two-point estimate c at θ+εz / θ−εz
    (logging L(θ+εz)), then for each tensor grad = ``gradient(c, z)`` and one optimizer update.

    A method sets ``gradient`` (c·z, sign(c)·z, ...) and the optimizer; this class owns the seeds.
    """

    def __init__(self, model: torch.nn.Module, seed: int, eps: float, optimizer: PerTensorOptimizer,
                 gradient: Callable[[float, torch.Tensor], torch.Tensor]):
        named = named_trainable(model)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.eps, self.optimizer, self.gradient = eps, optimizer, gradient
        self.seed_source = torch.Generator().manual_seed(seed)
        model.eval()  # ZO forwards in eval mode (dropout off), as every MeZO-lineage code

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> float:
        seed = draw_step_seed(self.seed_source)
        loss, c = estimate(self.params, closure, seed, self.eps)
        restore_and_apply(self.params, seed, self.eps,
                          lambda i, p, z: self.optimizer.update(i, p, self.gradient(c, z)))
        return loss

    def drift_probe(self) -> dict[str, float]:
        return dense_drift_probe(self.params, self.eps)
