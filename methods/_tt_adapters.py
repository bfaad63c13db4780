"""Tensorized bottleneck adapters (LoRETTA_adp, AdaZeta) and where they go in each architecture.

Adapter (shared/reference/adazeta-and-loretta.md §2): h + s·Up(ReLU(Down(h))), Down a TT
hidden → 64 and Up a TT 64 → hidden, both with bias, s = 1, no dropout. The input is cast
to fp32 and the output back to the layer's dtype, so the adapters stay fp32 on a bf16 model.

Placement:
- ``code`` (as the reference code ran): Llama gets separate *pre* adapters on the inputs
  of gate_proj and up_proj and a *post* adapter on down_proj's output: 3 per layer and
  none on attention. OPT: pre-fc1, post-fc2. BERT/RoBERTa: after the attention-output
  dense and the FFN-output dense, i.e. before dropout and the residual LayerNorm.
- ``paper`` ("after each attention and feed-forward sub-layer"): post o_proj / out_proj
  and post down_proj / fc2; BERT/RoBERTa as in ``code``.
Usage: ``sites = inject_tt_adapters(model, rank=5, placement="code")``.
"""

from __future__ import annotations

import dataclasses
import re

import torch

from zobench.methods._tt import ADAPTER_PRESETS_64, TTLinear, tt_modes

# AdaZeta's shapes as run: its Llama code hard-codes [16,16,16,4,4,4] (up: reversed) and its
# RoBERTa code [8,8,16,8,8] for both directions; other sizes fall back to LoRETTA's table.
ADAZETA_PRESETS_64 = {**ADAPTER_PRESETS_64, 1024: [8, 8, 16, 8, 8]}

_LLAMA_CODE = [(r"\.mlp\.gate_proj$", "pre"), (r"\.mlp\.up_proj$", "pre"), (r"\.mlp\.down_proj$", "post")]
_LLAMA_PAPER = [(r"\.self_attn\.o_proj$", "post"), (r"\.mlp\.down_proj$", "post")]
_OPT_CODE = [(r"\.fc1$", "pre"), (r"\.fc2$", "post")]
_OPT_PAPER = [(r"\.self_attn\.out_proj$", "post"), (r"\.fc2$", "post")]
_BERT = [(r"\.attention\.output\.dense$", "post"), (r"\.layer\.\d+\.output\.dense$", "post")]
PLACEMENTS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "code": {"llama": _LLAMA_CODE, "mistral": _LLAMA_CODE, "opt": _OPT_CODE, "bert": _BERT, "roberta": _BERT},
    "paper": {"llama": _LLAMA_PAPER, "mistral": _LLAMA_PAPER, "opt": _OPT_PAPER, "bert": _BERT, "roberta": _BERT},
}


class TTAdapter(torch.nn.Module):
    """h + scale·Up(ReLU(Down(h))) with TT Down/Up; computed in fp32, returned in h's dtype."""

    def __init__(self, hidden: int, bottleneck: int, rank: int, contraction: str, preset: dict[int, list[int]] | None,
                 init: str, scale: float, device: torch.device | str | None, reverse_up: bool = True):
        super().__init__()
        self.down = TTLinear(hidden, bottleneck, tt_modes(hidden, bottleneck, preset), rank,
                             contraction=contraction, device=device)
        self.up = TTLinear(bottleneck, hidden, tt_modes(bottleneck, hidden, preset, reverse_up), rank,
                           contraction=contraction, device=device)
        self.scale = scale
        if init == "zero":  # ablation: a zero-output start (not what the reference does)
            with torch.no_grad():
                self.up.cores[-1].zero_()
                self.up.bias.zero_()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = h.to(torch.float32)
        return (x + self.scale * self.up(torch.relu(self.down(x)))).to(h.dtype)


class AdaptedLinear(torch.nn.Module):
    """A frozen linear with an adapter on its input (``pre``) or its output (``post``)."""

    def __init__(self, base: torch.nn.Linear, adapter: TTAdapter, position: str):
        super().__init__()
        self.base, self.adapter, self.position = base, adapter, position

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.position == "pre":
            return self.base(self.adapter(x))
        return self.adapter(self.base(x))


@dataclasses.dataclass(frozen=True)
class Site:
    module: str  # the wrapped linear's name
    position: str  # pre | post
    hidden: int


def family_rules(model: torch.nn.Module, placement: str) -> list[tuple[str, str]]:
    family = model.config.model_type
    rules = PLACEMENTS[placement]
    if family not in rules:
        raise ValueError(f"no TT-adapter placement known for model type '{family}'; known: {', '.join(rules)}")
    return rules[family]


def find_sites(model: torch.nn.Module, placement: str) -> list[Site]:
    """Every linear the placement adapts, in module order (no changes to the model)."""
    rules = family_rules(model, placement)
    sites = []
    for name, module in model.named_modules():
        for pattern, position in rules:
            if isinstance(module, torch.nn.Linear) and re.search(pattern, name):
                sites.append(Site(name, position, module.in_features if position == "pre" else module.out_features))
    return sites


def set_submodule(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def inject_tt_adapters(model: torch.nn.Module, rank: int, placement: str = "code", bottleneck: int = 64,
                       contraction: str = "parallel", preset: dict[int, list[int]] | None = None, init: str = "reference",
                       scale: float = 1.0, train_norms: bool = False, reverse_up: bool = True) -> list[Site]:
    """Wrap each site's linear with a TT adapter; freeze everything but the adapters (and norms).

    ``reverse_up``: AdaZeta's up-projection modes (the preset reversed); False: LoRETTA's (the same list).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    sites = find_sites(model, placement)
    if not sites:
        raise ValueError(f"placement '{placement}' found no modules to adapt in {type(model).__name__}")
    for site in sites:
        base = model.get_submodule(site.module)
        adapter = TTAdapter(site.hidden, bottleneck, rank, contraction, preset, init, scale, base.weight.device,
                            reverse_up)
        set_submodule(model, site.module, AdaptedLinear(base, adapter, site.position))
    for name, p in model.named_parameters():
        if ".adapter." in name or (train_norms and is_norm(name)):
            p.requires_grad_(True)
    return sites


def is_norm(name: str) -> bool:
    """LayerNorm / RMSNorm weights and biases (Llama's *_layernorm and final norm, BERT's LayerNorm)."""
    return "norm" in name.lower()
