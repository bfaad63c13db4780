"""The first-order step shared by ft and lora: one forward, one backward, one optimizer step."""

from __future__ import annotations

import torch

from zobench.api import Closure


def backward_step(optimizer: torch.optim.Optimizer, closure: Closure) -> float:
    with torch.enable_grad():
        loss = closure()
        loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


class AdamWOver:
    """First-order AdamW over a given tensor list (adapters, norms); the model trains in train mode."""

    forwards_per_step = 1  # plus one backward

    def __init__(self, model: torch.nn.Module, params: list[torch.Tensor], lr: float, weight_decay: float, variant: str):
        self.params, self.variant = params, variant
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        model.train()

    def step(self, closure: Closure) -> float:
        return backward_step(self.optimizer, closure)
