"""Adapters in one flat buffer: the same trajectory as per-tensor z passes, bit for bit, in ≤ 2 launches a pass."""

from __future__ import annotations

import pytest
import torch

from zobench.api import TrainingPlan
from zobench.methods import _counter_directions, _flat, adazeta, mezo, mezo_lora
from zobench.models import load_model
from zobench.registry import make_args
from zobench.scoring.causal_lm import classification_loss

PLAN = TrainingPlan(train_size=8, batch_size=4, total_steps=12)  # Q: 1, 1, 1, 1, 2, 2 in the 6 steps


def trained_adapters(tiny_batch, method_name: str, flat: bool, steps: int = 6):
    """(adapter tensors by name after ``steps`` steps, launches per z pass, the method)."""
    model, _, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
    args = make_args(method_name, {"lr": 1e-2, "weight_decay": 0.1, "flat_buffer": flat})
    build = adazeta.build if method_name == "adazeta" else mezo_lora.build
    method = build(model, args, 0, plan=PLAN) if method_name == "adazeta" else build(model, args, 0)
    for _ in range(steps):
        method.step(lambda: classification_loss(model, tiny_batch))
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    zo = method.zo if method_name == "adazeta" else method
    return trained, len(zo.segments), method


@pytest.mark.parametrize("method_name", ["adazeta", "mezo-lora"])
def test_flat_buffer_equals_per_tensor_passes_bit_for_bit(tiny_batch, method_name):
    """z is keyed by the element's offset in the trainable vector, so a flat buffer's runs get the
    per-tensor z exactly: same adapters after 6 steps (weight decay and Q > 1 included), and a
    z pass is one launch per weight-decay rule instead of one per tensor."""
    flat, flat_launches, method = trained_adapters(tiny_batch, method_name, flat=True)
    per_tensor, tensor_launches, _ = trained_adapters(tiny_batch, method_name, flat=False)
    assert flat.keys() == per_tensor.keys()
    for name in flat:
        assert torch.equal(flat[name], per_tensor[name]), name
    rules = {mezo.uses_decay(name) for name in flat}  # AdaZeta: cores and biases; LoRA: A and B, all decayed
    assert flat_launches == len(rules) and tensor_launches == len(flat) > 2
    assert "+flat-buffer" in method.variant


def test_flattened_parameters_are_views_the_modules_still_use(tiny_batch):
    """After flatten_, writing the buffer changes what the module computes, and each parameter
    keeps its shape and value."""
    layer = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in layer.parameters()]
    runs, decay = _flat.flatten_(list(layer.parameters()), [True, False])
    assert [r.numel() for r in runs] == [6, 2] and decay == [True, False]
    for p, b in zip(layer.parameters(), before):
        assert torch.equal(p, b)
    with torch.no_grad():
        runs[1].fill_(5.0)
    assert torch.equal(layer(torch.zeros(1, 3)), torch.full((1, 2), 5.0))
    with pytest.raises(ValueError):
        _flat.flatten_([torch.zeros(2), torch.zeros(2, dtype=torch.float64)], [True, True])


def test_a_flat_pass_over_runs_equals_per_tensor_passes():
    """The direction seam itself: CounterDirections over per-tensor views and over one buffer agree."""
    tensors = [torch.linspace(-1, 1, n) for n in (5, 1, 130, 7)]
    flat = torch.cat(tensors)
    _counter_directions.CounterDirections(tensors).axpy_([(3, [0.5] * 4), (4, [-0.25] * 4)])
    _counter_directions.CounterDirections([flat]).axpy_([(3, [0.5]), (4, [-0.25])])
    assert torch.equal(torch.cat(tensors), flat)
