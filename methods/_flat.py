"""Many small trainable tensors as views into one flat buffer, so a z pass is one kernel launch per run.

AdaZeta's adapters on Llama-2-7B are 1,344 tensors holding 0.6M values: per-tensor z passes
cost launches, not bandwidth. ``flatten_`` copies the tensors into one contiguous buffer and
points each parameter's ``.data`` at its slice (the modules keep their Parameter objects and
see the same values), ordered so that tensors sharing a weight-decay rule are contiguous:
the buffer splits into at most two runs, one per coefficient of the update.
The counter-based z stream keys elements by their offset in the method's virtual parameter
vector (methods/_counter_directions.py), so a run launched with its start offset gets exactly
the z the per-tensor launches would give: flat = per-tensor, bit for bit.
Usage: ``runs, run_decay = flatten_(params, decay)`` with ``params`` already in run order.
"""

from __future__ import annotations

import itertools

import torch


@torch.no_grad()
def flatten_(params: list[torch.Tensor], decay: list[bool]) -> tuple[list[torch.Tensor], list[bool]]:
    """Move ``params`` into one buffer (in this order) and return its runs of equal ``decay``."""
    if not params:
        return [], []
    dtypes = {(p.dtype, p.device) for p in params}
    if len(dtypes) != 1:
        raise ValueError(f"a flat buffer holds one dtype on one device; these tensors have {sorted(map(str, dtypes))}")
    if len({id(p) for p in params}) != len(params):
        raise ValueError("a tensor appears twice in the list to flatten")
    total = sum(p.numel() for p in params)
    flat = torch.empty(total, dtype=params[0].dtype, device=params[0].device)
    offset = 0
    for p in params:
        n = p.numel()
        flat[offset : offset + n].copy_(p.reshape(-1))
        p.data = flat[offset : offset + n].view(p.shape)
        offset += n
    runs, run_decay, start = [], [], 0
    for flag, group in itertools.groupby(zip(params, decay), key=lambda pd: pd[1]):
        n = sum(p.numel() for p, _ in group)
        runs.append(flat[start : start + n])
        run_decay.append(flag)
        start += n
    return runs, run_decay
