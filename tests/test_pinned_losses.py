"""Pinned losses: every method's first 3 steps on random:tiny-llama equal the committed values.

Each method runs the real cell path (zobench.run.worker.execute_cell, in this process: data, scoring,
the method's build with its plan, the loop, both evaluations) with fixed seeds on CPU in fp32, where
the arithmetic is deterministic. The per-step train losses and the dev curve must match
tests/pinned_losses.json to a relative 1e-6, the forwards and the variant exactly. So a refactor that
changes any method's trajectory fails here, and a method added to methods/ without a pin fails too.

When a change is intended, regenerate the pins and commit them with the change, saying why:
``.venv/bin/python -m tests.pin_losses --update [METHOD ...]`` (see tests/pin_losses.py).
"""

from __future__ import annotations

import math

import pytest
from pin_losses import load_pins, run_pinned

from zobench.registry import method_names

PINS = {k: v for k, v in load_pins().items() if not k.startswith("_")}
REL = 1e-6
# FZOO divides each step by the spread of its N losses at ε = 1e-3, so the last bits in which two CPUs'
# fp32 matmul kernels differ come back 10⁴× larger: step 2 read 0.7146126 on the AVX-512 Xeon that
# pinned it and 0.7146368 on an AVX2 EPYC (3.4e-5 apart). A real change (say, the unbiased σ instead
# of the population σ) moves it by 8e-3.
REL_BY_METHOD = {"fzoo": 3e-4}


def close(a: float, b: float, rel: float = REL) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def test_every_method_has_a_pin_and_every_pin_a_method():
    """The registry and the pins list the same methods: a new method must be pinned, a removed one unpinned."""
    assert sorted(PINS) == method_names(), "run: .venv/bin/python -m tests.pin_losses --update"


@pytest.mark.parametrize("name", method_names())
def test_losses_equal_the_pins(name):
    """3 steps with fixed seeds give the committed per-step losses, forwards, dev curve and variant."""
    if name not in PINS:
        pytest.fail(f"no pin for method {name!r}: run .venv/bin/python -m tests.pin_losses --update {name}")
    pin = PINS[name]
    got = run_pinned(name, pin["args"])
    rel = REL_BY_METHOD.get(name, REL)
    hint = f"{name}: got {got['loss']}, pinned {pin['loss']} (intended? see tests/pin_losses.py)"
    assert len(got["loss"]) == len(pin["loss"]) == 3, hint
    assert all(close(a, b, rel) for a, b in zip(got["loss"], pin["loss"])), hint
    assert got["forwards"] == pin["forwards"], f"{name}: forwards {got['forwards']}, pinned {pin['forwards']}"
    assert got["variant"] == pin["variant"]
    assert [row[:2] for row in got["dev"]] == [row[:2] for row in pin["dev"]], f"{name}: dev accuracy moved"
    assert all(close(a[2], b[2], rel) for a, b in zip(got["dev"], pin["dev"])), f"{name}: dev loss {got['dev']} vs {pin['dev']}"
