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
