"""The quadratic the ZO parity tests step on: central differences are exact for it, so a step
computed by hand is the method's step up to rounding. Usage: ``Quadratic([0.5, -1.0], [2.0], h=[2, 2, 6])``."""

from __future__ import annotations

import torch


class Quadratic(torch.nn.Module):
    """f(w, b) = ½·Σ h_w·(w − t_w)² + ½·Σ h_b·(b − t_b)² over a weight and a bias (the names weight
    decay rules read), with h and t listed weight first; the loss is computed in fp64 whatever the dtype."""

    def __init__(self, weight, bias, h, target=None, dtype=torch.float64):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(weight, dtype=dtype))
        self.bias = torch.nn.Parameter(torch.tensor(bias, dtype=dtype))
        self.h = torch.tensor(h, dtype=torch.float64)
        self.target = torch.tensor(target if target is not None else [0.0] * len(h), dtype=torch.float64)

    def loss(self) -> torch.Tensor:
        n = self.weight.numel()
        w = self.weight.double() - self.target[:n]
        b = self.bias.double() - self.target[n:]
        return 0.5 * (self.h[:n] * w**2).sum() + 0.5 * (self.h[n:] * b**2).sum()

    def theta(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight.detach().clone(), self.bias.detach().clone()
