"""LoRA adapters injected with peft, placed identically for every LoRA method (fair comparisons).

The papers' placement is the attention query and value projections, r = 8, α = 16, no
dropout (MeZO lora.py; ZO-Bench). Module names differ per family, so "qv" is mapped per
architecture; any other placement is a comma-separated list of module names.
``inject_adapter_in_model`` changes the model in place (no PeftModel wrapper), so the
harness keeps calling the same model class and the base weights are frozen.
Usage: ``params = inject_lora(model, rank=8, alpha=16, targets="qv")``.
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


def inject_lora(model: torch.nn.Module, rank: int, alpha: int, targets: str) -> list[torch.Tensor]:
    """Add LoRA to the target modules, freeze everything else, return the adapter tensors."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=target_modules(model, targets))
    inject_adapter_in_model(config, model)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return [p for p in model.parameters() if p.requires_grad]
