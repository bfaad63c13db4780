"""``zobench inspect``: what a method would train on a model, without materialising weights.

The model is built on PyTorch's meta device (shapes, no storage), so Llama-2-7B costs no
memory and no download beyond its config. Reports the trainable parameter count, where
the adapters went and the TT shapes.
Usage: ``summary = inspect_method("adazeta", "random:llama2-7b", {"rank": 5})``.
"""

from __future__ import annotations

import collections
import re
from typing import Any


from zobench.api import UserError
from zobench.methods._tt import TTLinear
from zobench.models import meta_model
from zobench.registry import args_dict, make_args, method_module


def _site_kind(name: str) -> str:
    """Where a trainable tensor sits, layer index folded: model.layers.*.mlp.up_proj (adapter/lora_ parts cut)."""
    owner = re.split(r"\.adapter\.|\.lora_", name)[0]
    return re.sub(r"\.\d+(\.|$)", r".*\1", owner)


def inspect_method(method: str, model_name: str, raw_args: dict[str, Any]) -> dict[str, Any]:
    module = method_module(method)
    args = make_args(method, raw_args, "inspect")
    model = meta_model(model_name)
    base_params = sum(p.numel() for p in model.parameters())
    try:
        built = module.build(model, args, 0)
    except ValueError as exc:  # impossible shapes or placements: the user's request, not a crash
        raise UserError(f"{method} on {model_name}: {exc}") from None
    trainable = {id(p): p for p in built.params}
    names = [n for n, p in model.named_parameters() if id(p) in trainable]
    tt_shapes = collections.Counter(
        (m.in_features, m.out_features, tuple(m.modes), m.rank, m.contraction, m.bias is not None)
        for m in model.modules() if isinstance(m, TTLinear))
    sites = collections.Counter(_site_kind(n) for n in names)
    return {
        "method": method,
        "model": model_name,
        "model_type": model.config.model_type,
        "variant": built.variant,
        "args": args_dict(args),
        "base_params": base_params,
        "trainable_params": sum(p.numel() for p in trainable.values()),
        "trainable_tensors": len(trainable),
        "trainable_by_module": dict(sites),
        "tt_layers": [{"in": i, "out": o, "modes": list(k), "rank": r, "contraction": c, "bias": b, "count": n}
                      for (i, o, k, r, c, b), n in tt_shapes.items()],
        "details": built.details,
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['method']} on {summary['model']} ({summary['model_type']}), variant {summary['variant']}",
             f"trainable parameters: {summary['trainable_params']:,} in {summary['trainable_tensors']} tensors "
             f"({summary['trainable_params'] / summary['base_params']:.4%} of {summary['base_params']:,} base parameters)",
             "trainable tensors by site (layer index folded):"]
    lines += [f"  {count:5d} × {name}" for name, count in summary["trainable_by_module"].items()]
    if summary["tt_layers"]:
        lines.append("TT layers:")
        lines += [f"  {t['count']:5d} × {t['in']} → {t['out']}: modes {t['modes']}, rank {t['rank']}, "
                  f"{t['contraction']}, bias {'yes' if t['bias'] else 'no'}" for t in summary["tt_layers"]]
    state = summary["details"].get("state_bytes")
    if state is not None:  # the ZO optimizer family declares what its state will cost (allocated at step 1)
        lines.append(f"optimizer state: {state:,} bytes ({state / 2**30:.2f} GiB) expected: "
                     f"{summary['details'].get('state', '')}")
    return "\n".join(lines)
