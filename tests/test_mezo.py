"""MeZO is faithful to the reference: a hand-computed SPSA step and the weight-decay rule (restore drift per
dtype: test_zo_estimators.py)."""

from __future__ import annotations

import torch
from quadratic import Quadratic

from zobench.methods import _zgen, mezo
from zobench.methods._zo import draw_step_seed, perturb_


TARGET = torch.tensor([1.0, 1.0], dtype=torch.float64)


def quadratic() -> Quadratic:
    """f(w, b) = ‖w − t‖² + 3·b² (t = TARGET): the central difference is exact for a quadratic."""
    return Quadratic([0.5, -1.0], [2.0], h=[2.0, 2.0, 6.0], target=[*TARGET.tolist(), 0.0])


def test_spsa_step_matches_hand_computation():
    """θ ← θ − lr·g·z with g = (f(θ+εz) − f(θ−εz))/2ε, z regenerated from the step seed (torch.randn path)."""
    model = quadratic()
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    lr, eps, seed = 0.01, 1e-3, 3
    method = mezo.build(model, mezo.Args(lr=lr, eps=eps, generator="torch"), seed)
    logged = method.step(model.loss)

    # Hand computation, independent of the method's code path.
    step_seed = draw_step_seed(torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(step_seed)
    zw = torch.randn(2, generator=gen, dtype=torch.float64)
    zb = torch.randn(1, generator=gen, dtype=torch.float64)
    f = lambda w, b: ((w - TARGET) ** 2).sum() + 3 * (b**2).sum()  # noqa: E731
    f_pos, f_neg = f(w0 + eps * zw, b0 + eps * zb), f(w0 - eps * zw, b0 - eps * zb)
    g = (f_pos - f_neg) / (2 * eps)
    # For a quadratic, g is the exact directional derivative ∇f·z.
    analytic = (2 * (w0 - TARGET) * zw).sum() + (6 * b0 * zb).sum()
    torch.testing.assert_close(g, analytic, rtol=1e-6, atol=1e-9)

    assert abs(logged - f_pos.item()) < 1e-12  # MeZO logs L(θ+εz)
    torch.testing.assert_close(model.weight.detach(), w0 - lr * g * zw, rtol=0, atol=1e-12)
    torch.testing.assert_close(model.bias.detach(), b0 - lr * g * zb, rtol=0, atol=1e-12)


def test_spsa_step_with_the_counter_generator_matches_hand_computation():
    """The same step with z from the counter stream: the trainable tensors (decayed first) read as
    one vector, element e's z is ``_zgen.draw(n, step_seed, 0)[e]``. The kernels round each coefficient to fp32 (the z pass
    is fp32 arithmetic), so the update agrees to that rounding: 2⁻²⁴·|coefficient|·|z| per pass."""
    model = quadratic()
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    lr, eps, seed = 0.01, 1e-3, 3
    method = mezo.build(model, mezo.Args(lr=lr, eps=eps), seed)
    assert method.details["generator"] == "counter-philox" and method.variant.endswith("+z-counter-philox")
    logged = method.step(model.loss)

    step_seed = draw_step_seed(torch.Generator().manual_seed(seed))
    z = _zgen.draw((3,), step_seed, 0).double()  # the trainable tensors as one vector: weight, then bias
    zw, zb = z[:2], z[2:]
    f = lambda w, b: ((w - TARGET) ** 2).sum() + 3 * (b**2).sum()  # noqa: E731
    eps32 = float(torch.tensor(eps, dtype=torch.float32))  # the coefficient as the kernel holds it
    f_pos, f_neg = f(w0 + eps32 * zw, b0 + eps32 * zb), f(w0 - eps32 * zw, b0 - eps32 * zb)
    g = float((f_pos - f_neg) / (2 * eps32))
    assert abs(logged - f_pos.item()) < 1e-12
    # Passes: +ε, −2ε, then (ε − lr·g): each coefficient carries ≤ 2⁻²⁴ relative rounding.
    bound = 2**-24 * (4 * eps + abs(eps - lr * g)) * 5.0 + 1e-15
    torch.testing.assert_close(model.weight.detach(), w0 - lr * g * zw, rtol=0, atol=bound)
    torch.testing.assert_close(model.bias.detach(), b0 - lr * g * zb, rtol=0, atol=bound)


def test_weight_decay_skips_bias_and_layernorm_names():
    """The reference rule: θ ← θ − lr·(g·z + wd·θ), no decay for 'bias', 'layer_norm', 'layernorm'."""
    assert mezo.uses_decay("model.layers.0.mlp.up_proj.weight")
    assert mezo.uses_decay("model.norm.weight")  # the reference rule misses Llama's final norm; kept faithful
    for name in ("model.decoder.layers.0.fc1.bias", "model.decoder.layers.0.self_attn_layer_norm.weight",
                 "model.layers.0.input_layernorm.weight"):
        assert not mezo.uses_decay(name)

    model = quadratic()
    method = mezo.build(model, mezo.Args(lr=0.1, eps=1e-3, weight_decay=0.5, fused_update=False), 0)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    method.update([11], [0.0])  # g = 0 isolates the decay term
    torch.testing.assert_close(model.weight.detach(), w0 * (1 - 0.1 * 0.5))
    torch.testing.assert_close(model.bias.detach(), b0)


def test_directions_do_not_touch_the_global_rng():
    """Perturbing must leave the global torch RNG untouched (MeZO's code reseeds it every call)."""
    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    perturb_([torch.zeros(10)], 9, 1.0)
    assert torch.equal(torch.rand(3), expected)
