"""The tensor-train layer and the TT adapters: contraction paths, shapes, init, placement."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zobench.methods._tt import ADAPTER_PRESETS_64, CONTRACTIONS, TTLinear, auto_modes, group_cuts, tt_modes
from zobench.methods._tt_adapters import TTAdapter, find_sites, inject_tt_adapters
from zobench.models import load_model

SIZES = st.sampled_from([4, 6, 8, 12, 16, 24, 36, 64, 96, 576])


@settings(max_examples=40, deadline=None)
@given(in_features=SIZES, out_features=SIZES, rank=st.integers(1, 6), contraction=st.sampled_from(CONTRACTIONS),
       tokens=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_every_contraction_path_equals_the_dense_reconstruction(in_features, out_features, rank, contraction, tokens, seed):
    """x·W + b computed by any path equals x @ (the TT reconstructed densely) + b, within fp32 tolerance."""
    modes = tt_modes(in_features, out_features)
    try:
        layer = TTLinear(in_features, out_features, modes, rank, contraction=contraction)
    except ValueError:  # only asking for more groups than there are cores may fail on auto modes
        assert contraction.startswith("groups") and int(contraction.split("-")[1]) > len(modes)
        return
    torch.manual_seed(seed)
    layer.reset_parameters()
    x = torch.randn(2, tokens, in_features)
    expected = (x.reshape(-1, in_features) @ layer.weight() + layer.bias).reshape(2, tokens, out_features)
    assert torch.allclose(layer(x), expected, rtol=1e-4, atol=1e-5)


def test_weight_is_the_row_major_tt_of_input_then_output_modes():
    """The dense W is Σ over ranks of G1[i1]·…·Gd[id], indexed row-major by [input modes…, output modes…]."""
    torch.manual_seed(0)
    layer = TTLinear(6, 4, [2, 3, 4], rank=2, bias=False, contraction="sequential")
    g1, g2, g3 = (c.detach() for c in layer.cores)
    full = torch.einsum("aib,bjc,ckd->ijk", g1, g2, g3).reshape(6, 4)
    assert torch.allclose(layer.weight(), full, atol=1e-6)


def test_parallel_never_forms_the_weight(monkeypatch):
    """AdaZeta's parallel path contracts input halves and output halves separately: W is never built."""
    layer = TTLinear(4096, 64, ADAPTER_PRESETS_64[4096], rank=5, contraction="parallel")
    monkeypatch.setattr(TTLinear, "weight", lambda self: pytest.fail("parallel formed W"))
    assert layer(torch.randn(3, 4096)).shape == (3, 64)


def test_reference_init_gives_weight_std_sigma_and_a_nonzero_output():
    """Cores N(0,1)/√r·σ^{1/d} reconstruct to std ≈ σ = √(1/(in+out)); bias ~ U(±1/√out); output ≠ 0."""
    torch.manual_seed(0)
    layer = TTLinear(4096, 64, ADAPTER_PRESETS_64[4096], rank=5)
    sigma = (1 / (4096 + 64)) ** 0.5
    assert 0.5 * sigma < float(layer.weight().detach().std()) < 2 * sigma
    assert float(layer.bias.detach().abs().max()) <= 1 / 64 ** 0.5
    adapter = TTAdapter(64, 16, 3, "parallel", None, "reference", 1.0, "cpu")
    h = torch.randn(2, 64)
    assert not torch.allclose(adapter(h), h)


def test_zero_init_adapter_is_the_identity_and_keeps_the_input_dtype():
    """The zero-output ablation starts as h ↦ h; adapters compute in fp32 and return h's dtype (bf16)."""
    adapter = TTAdapter(64, 16, 3, "parallel", None, "zero", 1.0, "cpu")
    h = torch.randn(2, 5, 64, dtype=torch.bfloat16)
    out = adapter(h)
    assert out.dtype == torch.bfloat16 and torch.equal(out, h)
    assert all(p.dtype == torch.float32 for p in adapter.parameters())


@pytest.mark.parametrize("n, expected", [(576, [6, 8, 12]), (768, [8, 8, 12]), (1024, [8, 8, 16]), (4096, [16, 16, 16]),
                                         (64, [8, 8]), (577, [577])])
def test_auto_modes_are_balanced_and_multiply_back(n, expected):
    """Hidden sizes without a preset are factorised into about-16 modes that multiply to the size."""
    modes = auto_modes(n)
    assert modes == expected and math.prod(modes) == n


def test_presets_are_the_references_and_up_projections_reverse_them():
    """4096 → 64 uses [16,16,16,4,4,4] and 64 → 4096 its reverse (AdaZeta's Llama code)."""
    assert tt_modes(4096, 64, ADAPTER_PRESETS_64) == [16, 16, 16, 4, 4, 4]
    assert tt_modes(64, 4096, ADAPTER_PRESETS_64) == [4, 4, 4, 16, 16, 16]
    assert tt_modes(576, 64, ADAPTER_PRESETS_64) == [6, 8, 12, 8, 8]  # no preset for SmolLM2's 576


@pytest.mark.parametrize("kwargs, message", [
    ({"modes": [4, 4, 4], "in_features": 16, "out_features": 8}, "multiply to"),
    ({"modes": [4, 4, 2], "in_features": 16, "out_features": 2, "rank": 0}, "rank"),
    ({"modes": [4, 8, 8, 8, 8, 4], "in_features": 1024, "out_features": 64, "contraction": "parallel"}, "do not split"),
    ({"modes": [4, 4, 2], "in_features": 16, "out_features": 2, "contraction": "groups-4"}, "groups"),
])
def test_impossible_requests_get_a_clear_error(kwargs, message):
    """Shapes that do not multiply out, rank 0, parallel without an input split, too many groups: ValueError."""
    kwargs = {"rank": 2, "contraction": "sequential", **kwargs}
    with pytest.raises(ValueError, match=message):
        TTLinear(**kwargs)


def test_group_cuts_keep_the_input_split_as_a_cut():
    """Every g-group split has one cut exactly where the input modes end."""
    modes = [16, 16, 16, 4, 4, 4]
    for groups in (2, 3, 4, 5, 6):
        cuts = group_cuts(modes, 4096, groups)
        assert len(cuts) == groups and 3 in cuts and cuts[-1] == 6 and cuts == sorted(set(cuts))


def _meta(config):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    auto = AutoModelForMaskedLM if config.model_type in ("bert", "roberta") else AutoModelForCausalLM
    with torch.device("meta"):
        return auto.from_config(config)


def _opt():
    from transformers import OPTConfig

    return _meta(OPTConfig(vocab_size=64, hidden_size=64, ffn_dim=128, num_hidden_layers=3, num_attention_heads=4,
                           word_embed_proj_dim=64, max_position_embeddings=64))


def _bert():
    from transformers import BertConfig

    return _meta(BertConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                            num_attention_heads=4, max_position_embeddings=64))


def _llama():
    return load_model("random:tiny-llama", "fp32", "meta")[0]


@pytest.mark.parametrize("build, placement, expected", [
    (_llama, "code", {"mlp.gate_proj": "pre", "mlp.up_proj": "pre", "mlp.down_proj": "post"}),
    (_llama, "paper", {"self_attn.o_proj": "post", "mlp.down_proj": "post"}),
    (_opt, "code", {"fc1": "pre", "fc2": "post"}),
    (_opt, "paper", {"self_attn.out_proj": "post", "fc2": "post"}),
    (_bert, "code", {"attention.output.dense": "post", "output.dense": "post"}),
])
def test_placement_puts_the_right_adapters_in_the_right_modules(build, placement, expected):
    """Per layer exactly the expected modules get an adapter, at the expected side, and nothing else."""
    model = build()
    layers = model.config.num_hidden_layers
    sites = find_sites(model, placement)
    assert len(sites) == layers * len(expected)
    for site in sites:
        suffix = next(s for s in expected if site.module.endswith("." + s) and
                      not (s == "output.dense" and site.module.endswith("attention.output.dense")))
        assert site.position == expected[suffix]
    inject_tt_adapters(model, rank=2, placement=placement, bottleneck=8, contraction="sequential")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".adapter." in n for n in trainable)


def test_pre_and_post_adapters_wrap_the_linear_on_the_right_side():
    """A pre adapter feeds the linear (base(adapter(x))); a post adapter reads its output (adapter(base(x)))."""
    model, _, _ = load_model("random:tiny-llama", "fp32", "cpu")
    inject_tt_adapters(model, rank=2, bottleneck=8)
    layer = model.model.layers[0].mlp
    x = torch.randn(3, 64)
    assert torch.allclose(layer.gate_proj(x), layer.gate_proj.base(layer.gate_proj.adapter(x)))
    y = torch.randn(3, layer.down_proj.base.in_features)
    assert torch.allclose(layer.down_proj(y), layer.down_proj.adapter(layer.down_proj.base(y)))


def test_bf16_base_keeps_fp32_adapters_and_runs():
    """On a bf16 model the adapters stay fp32 and the forward pass works and stays finite."""
    model, _, _ = load_model("random:tiny-llama", "bf16", "cpu")
    inject_tt_adapters(model, rank=2, bottleneck=8)
    adapter_dtypes = {p.dtype for n, p in model.named_parameters() if ".adapter." in n}
    assert adapter_dtypes == {torch.float32}
    logits = model(torch.randint(0, 300, (2, 7))).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()
