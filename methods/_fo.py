"""The first-order step shared by ft, lora and loretta: precision, LR schedule, clipping, AdamW.

The official FT, LoRA and LoRETTA runs trained through the HF Trainer (MeZO finetune.sh:
``--fp16``, the default linear schedule, ``max_grad_norm`` 1.0; see
shared/reference/mezo-and-zo-bench.md §1.4), so these are the defaults here:
- ``precision: amp`` (on a fp16/bf16 model): the trainable tensors become fp32 master
  weights, so AdamW's states are fp32 too; the forward runs under ``torch.autocast`` in the
  model's dtype (the backward follows it); fp16 adds ``torch.amp.GradScaler`` (dynamic loss
  scaling; a step whose gradients overflow is skipped), as the Trainer's ``--fp16``; bf16
  needs no scaler (``--bf16``). Frozen weights stay in the model's dtype.
- ``precision: pure``: the optimizer on the half-precision tensors themselves (the memory
  floor of first-order training). torch's default AdamW does its arithmetic in the
  tensors' dtype: fp16 flushes eps = 1e-8 to 0, and where the second moment underflows
  (g² (1−β₂) below 6e-8, i.e. |g| < ~8e-3) it divides 0 by 0. Here pure runs torch's
  fused AdamW (fp32 arithmetic inside the kernel, states stored in the tensors' dtype)
  with eps raised to at least the smallest normal number of that dtype (fp16: 6.1e-5):
  a flushed second moment then bounds the step by lr·|m|/eps instead of dividing by 0.
  bf16 has fp32's exponent range, so its eps stays.
- On an fp32 model both policies are plain fp32 training.
- ``lr_schedule: linear`` decays the LR to 0 over the cell's steps with no warm-up
  (``transformers.get_linear_schedule_with_warmup``, the Trainer's default); ``constant``.
  The step count comes from the run's TrainingPlan; a build outside a run (no plan) runs
  constant, and the variant says so.
- ``max_grad_norm`` clips the global gradient norm (after unscaling) as the Trainer does;
  ``None`` turns clipping off.
Every choice goes into the method's ``variant`` and ``details``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Literal

import torch

from zobench.api import Closure, TrainingPlan, ranged


@dataclasses.dataclass
class FirstOrderArgs:
    """What every first-order method shares; method Args inherit it."""

    precision: Literal["amp", "pure"] = "amp"
    lr_schedule: Literal["linear", "constant"] = "linear"
    max_grad_norm: float | None = ranged(1.0, gt=0)  # None: no clipping


DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16"}
MakeOptimizer = Callable[[list[torch.Tensor], float | None], torch.optim.Optimizer]  # (params, eps floor) → optimizer


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype the model was loaded in: that of its first floating-point parameter."""
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def pure_eps(params: list[torch.Tensor], eps: float) -> float:
    """AdamW's eps for half-precision states: at least the smallest normal number of each dtype."""
    return max([eps] + [torch.finfo(p.dtype).tiny for p in params])


def adamw(lr: float, weight_decay: float) -> MakeOptimizer:
    """torch AdamW; with an eps floor (pure precision) the fused kernel with eps raised to it."""
    def make(params: list[torch.Tensor], eps_floor: float | None) -> torch.optim.Optimizer:
        if eps_floor is None:
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=max(1e-8, eps_floor), fused=True)
    return make


def cast_to_master(model: torch.nn.Module, params: list[torch.Tensor], dtype: torch.dtype) -> None:
    """Make the trainable tensors fp32 masters in place (their AdamW states then follow them).

    Where frozen weights stay in half precision, a module whose own weights were cast (a
    trainable norm, a half-precision LoRA) computes in fp32 and hands back ``dtype``, as
    LoRETTA's and AdaZeta's adapters do: the next frozen layer gets the dtype it expects,
    also in evaluation, which runs outside autocast.
    """
    cast = {id(p) for p in params if p.is_floating_point() and p.dtype != torch.float32}
    with torch.no_grad():
        for p in params:
            if id(p) in cast:
                p.data = p.data.float()
    if not any(p.is_floating_point() and p.dtype == dtype for p in model.parameters()):
        return  # every weight is fp32 now (ft): nothing is mixed
    for module in model.modules():
        if any(id(p) in cast for p in module.parameters(recurse=False)):
            module.register_forward_pre_hook(lambda _, args: tuple(_as(a, torch.float32) for a in args))
            module.register_forward_hook(lambda _, args, out: _as(out, dtype))


def _as(value, dtype: torch.dtype):
    return value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value


class FirstOrder:
    """One forward, one backward, one optimizer step under the precision policy and LR schedule."""

    forwards_last_step = 1  # plus one backward

    def __init__(self, model: torch.nn.Module, params: list[torch.Tensor], make_optimizer: MakeOptimizer,
                 args: FirstOrderArgs, plan: TrainingPlan | None, variant: str, dtype: torch.dtype | None = None):
        """``dtype``: the model's own dtype (default: read from the model now, before any casting)."""
        self.dtype = dtype or model_dtype(model)
        self.policy = "fp32" if self.dtype == torch.float32 else f"{args.precision}-{DTYPE_NAMES.get(self.dtype, self.dtype)}"
        self.amp = args.precision == "amp" and self.dtype != torch.float32
        if self.amp:
            cast_to_master(model, params, self.dtype)
        self.params = params
        device = params[0].device if params else torch.device("cpu")
        self.device_type = device.type
        eps_floor = pure_eps(params, 1e-8) if args.precision == "pure" and self.dtype != torch.float32 else None
        self.optimizer = make_optimizer(params, eps_floor)
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.amp and self.dtype == torch.float16)
        self.max_grad_norm = args.max_grad_norm
        self.scheduler, schedule = self._schedule(args.lr_schedule, plan)
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        self.last_grad_norm: float | None = None  # before clipping
        adam_eps = self.optimizer.param_groups[0].get("eps")
        self.variant = (f"{variant}+{self.policy}" + (f"-eps{adam_eps:.2g}" if eps_floor is not None and adam_eps else "")
                        + f"+lr-{schedule}" + (f"+clip{self.max_grad_norm:g}" if self.max_grad_norm else "+no-clip"))
        self.details = {"precision": self.policy, "loss_scaling": self.scaler.is_enabled(), "lr_schedule": schedule,
                        "max_grad_norm": self.max_grad_norm, "adam_eps": adam_eps}
        model.train()  # as the HF Trainer does for first-order fine-tuning

    def _schedule(self, name: str, plan: TrainingPlan | None):
        if name == "constant":
            return None, "constant"
        if name != "linear":
            raise ValueError(f"unknown lr_schedule '{name}'; valid: linear, constant")
        if plan is None:
            return None, "constant(no-plan)"
        from transformers import get_linear_schedule_with_warmup

        return get_linear_schedule_with_warmup(self.optimizer, 0, plan.total_steps), f"linear({plan.total_steps})"

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def step(self, closure: Closure) -> float:
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        with torch.enable_grad():
            with self.autocast():
                loss = closure()
            self.scaler.scale(loss).backward()
        if self.max_grad_norm:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            self.last_grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm))
        self.scaler.step(self.optimizer)  # skipped when fp16 gradients overflowed
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def adamw_over(model: torch.nn.Module, params: list[torch.Tensor], lr: float, weight_decay: float,
               args: FirstOrderArgs, plan: TrainingPlan | None, variant: str,
               dtype: torch.dtype | None = None) -> FirstOrder:
    """First-order AdamW over a given tensor list (adapters, norms); the model trains in train mode."""
    return FirstOrder(model, params, adamw(lr, weight_decay), args, plan, variant, dtype)
