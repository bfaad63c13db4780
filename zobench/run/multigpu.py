"""A cell on several GPUs: the model spread across them with a device map, and every device
synchronised where timing needs it.

As MeZO does for OPT-30B/66B (``device_map="auto"`` in large_models/run.py), the layers are
placed in order across the GPUs the cell holds (its CUDA_VISIBLE_DEVICES), and accelerate's
hooks move activations between them: a naive pipeline, one GPU busy at a time. ZO methods
need only forwards, so this works unchanged; they perturb each tensor on its own device
(methods/_zo.py keeps one generator per device). Headroom per GPU is left for activations,
as ZO-Bench does (``max_memory = free - 5 GiB``).
Usage: ``kwargs = device_map_kwargs(4)``; ``spread(model, 4)``; ``sync_all()``.
"""

from __future__ import annotations

from typing import Any

import torch

HEADROOM_BYTES = 5 * 2**30  # per GPU, for activations and the ZO step's temporaries


def max_memory(n_gpus: int, headroom: int = HEADROOM_BYTES) -> dict[int, int]:
    """Bytes each of the first ``n_gpus`` visible GPUs may hold for weights."""
    return {i: max(torch.cuda.mem_get_info(i)[0] - headroom, 0) for i in range(n_gpus)}


def device_map_kwargs(n_gpus: int) -> dict[str, Any]:
    """``from_pretrained`` arguments that stream the weights straight onto the cell's GPUs."""
    return {"device_map": "auto", "max_memory": max_memory(n_gpus)}


def spread(model: torch.nn.Module, n_gpus: int) -> torch.nn.Module:
    """Place an already built model (random weights) across the GPUs, the way ``device_map="auto"`` would."""
    from accelerate import dispatch_model, infer_auto_device_map

    no_split = getattr(model, "_no_split_modules", None) or []
    device_map = infer_auto_device_map(model, max_memory=max_memory(n_gpus), no_split_module_classes=no_split)
    return dispatch_model(model, device_map=device_map)


def cell_gpus(device: str, gpus: int) -> int:
    """How many GPUs the cell's process spreads over: its ``gpus`` on CUDA, else none."""
    if torch.device(device).type != "cuda":
        return 0
    visible = torch.cuda.device_count()
    if gpus > visible:
        raise RuntimeError(f"the cell needs {gpus} GPUs but sees {visible} (CUDA_VISIBLE_DEVICES="
                           f"{__import__('os').environ.get('CUDA_VISIBLE_DEVICES')})")
    return gpus


def sync_all(n_gpus: int) -> None:
    """Wait for every GPU the cell holds: a step ends when its last device is done."""
    for i in range(n_gpus):
        torch.cuda.synchronize(i)
