"""LoRA placement is the papers' (q and v, r 8, α 16) and identical for lora and mezo-lora."""

from __future__ import annotations

import pytest
import torch

from zobench.methods import lora, mezo_lora
from zobench.methods._lora import inject_lora
from zobench.models import load_model


def adapter_names(model) -> list[str]:
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


def test_qv_placement_and_parameter_count_on_llama():
    """tiny-llama: q is 64→64, v is 64→32 (2 kv heads of 16); LoRA adds r·(in+out) per matrix."""
    model, _, _ = load_model("random:tiny-llama", "fp32", "cpu")
    params = inject_lora(model, rank=8, alpha=16, targets="qv")
    names = adapter_names(model)
    assert all(".q_proj.lora_" in n or ".v_proj.lora_" in n for n in names) and len(names) == 2 * 2 * 2
    assert sum(p.numel() for p in params) == 2 * (8 * (64 + 64) + 8 * (64 + 32))


@pytest.mark.parametrize("family", ["opt", "bert"])
def test_qv_placement_follows_the_architecture(family):
    from transformers import AutoModel, BertConfig, OPTConfig

    config = (OPTConfig(vocab_size=64, hidden_size=32, ffn_dim=64, num_hidden_layers=1, num_attention_heads=2,
                        word_embed_proj_dim=32) if family == "opt" else
              BertConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2))
    model = AutoModel.from_config(config)
    inject_lora(model, rank=4, alpha=8, targets="qv")
    expected = ("q_proj", "v_proj") if family == "opt" else ("query", "value")
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in adapter_names(model)} == set(expected)


def test_lora_and_mezo_lora_place_the_same_adapters_and_keep_the_papers_defaults():
    a, _, _ = load_model("random:tiny-llama", "fp32", "cpu")
    b, _, _ = load_model("random:tiny-llama", "fp32", "cpu")
    lora.build(a, lora.Args(), 0)
    zo = mezo_lora.build(b, mezo_lora.Args(), 0)
    assert adapter_names(a) == adapter_names(b)
    assert (zo.args.lr, zo.args.eps) == (1e-4, 1e-2)
    assert "lora" in zo.variant


def test_unknown_family_needs_explicit_targets():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    model.config = type("Config", (), {"model_type": "mystery"})()
    with pytest.raises(ValueError, match="pass targets as module names"):
        inject_lora(model, rank=2, alpha=4, targets="qv")
