"""LoRA adapters injected with peft, placed identically for every LoRA method (fair comparisons).

The papers' placement is the attention query and value projections, r = 8, α = 16, no
dropout (MeZO lora.py; ZO-Bench). Module names differ per family, so "qv" is mapped per
architecture; any other placement is a comma-separated list of module names.
``inject_adapter_in_model`` changes the model in place (no PeftModel wrapper), so the
harness keeps calling the same model class and the base weights are frozen.
``adapter_dtype``: ``model`` keeps peft's default, the adapters in the base layer's dtype
(MeZO's lora.py on its fp16 OPT); ``fp32`` makes them fp32 on a half-precision base, as
AdaZeta's Llama-2 baselines ran (peft then casts the adapter input to fp32 and the
result back). fp32 adapters are what keeps ZO's +εz−2εz+εz restore exact to ~1e-8.
Usage: ``params = inject_lora(model, rank=8, alpha=16, targets="qv", adapter_dtype="fp32")``.
"""

from __future__ import annotations

import torch

QV_BY_FAMILY = {
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "opt": ["q_proj", "v_proj"],
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
}


def target_modules(model: torch.nn.Module, targets: str) -> list[str]:
    if targets != "qv":
        return [t.strip() for t in targets.split(",") if t.strip()]
    family = model.config.model_type
    if family not in QV_BY_FAMILY:
        raise ValueError(f"no query/value placement known for model type '{family}'; "
                         f"pass targets as module names, e.g. 'q_proj,v_proj' (known: {', '.join(QV_BY_FAMILY)})")
    return QV_BY_FAMILY[family]


ADAPTER_DTYPES = ("model", "fp32")


def inject_lora(model: torch.nn.Module, rank: int, alpha: int, targets: str,
                adapter_dtype: str = "model") -> list[torch.Tensor]:
    """Add LoRA to the target modules, freeze everything else, return the adapter tensors."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=target_modules(model, targets))
    if adapter_dtype not in ADAPTER_DTYPES:
        raise ValueError(f"unknown adapter_dtype '{adapter_dtype}'; valid: {', '.join(ADAPTER_DTYPES)}")
    inject_adapter_in_model(config, model)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
        if "lora_" in name and adapter_dtype == "fp32":
            p.data = p.data.float()
    return [p for p in model.parameters() if p.requires_grad]
