"""Pinned trajectories: every method, 3 steps on random:tiny-llama with fixed seeds, run through the
real cell path (zobench.run.worker.execute_cell, in this process) and compared to tests/pinned_losses.json.

A refactor of the worker, the scoring or a method must leave these numbers as they are. When a change
of the trajectory is intended (a method's fix, a new default), regenerate the pins and commit them
with the change, saying in the commit why they moved:

    .venv/bin/python -m tests.pin_losses --update            # every method in methods/
    .venv/bin/python -m tests.pin_losses --update mezo ft    # only these (the others stay)
    .venv/bin/python -m tests.pin_losses                     # print a fresh run next to the pins

Usage from tests: ``load_pins()``, ``run_pinned(name, args)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

PINS = Path(__file__).resolve().parent / "pinned_losses.json"
STEPS = 3

# Hyperparameters for the pinned run: learning rates large enough that three steps move the loss
# well past the comparison's tolerance (most defaults, 1e-6 or 1e-7, would leave steps 2 and 3
# equal to step 1 at 1e-6), small windows so a refresh happens. A method missing here is pinned
# with lr 1e-3 where it has one, else its defaults.
PIN_ARGS: dict[str, dict[str, Any]] = {
    "adazeta": {"lr": 1e-2},
    "bszo": {"lr": 1e-3},
    "floor": {},
    "forward-grad": {"lr": 1e-3},
    "ft": {"lr": 1e-3},
    "fzoo": {"lr": 1e-3, "n_dirs": 4},
    "hizoo": {"lr": 1e-3, "eps": 1e-3},
    "lora": {"lr": 1e-2},
    "loretta-adp": {"lr": 1e-2},
    "loretta-rep": {"lr": 1e-2},
    "lozo": {"lr": 1e-3, "interval": 2},
    "lozo-m": {"lr": 1e-3, "interval": 2},
    "mezo": {"lr": 1e-3, "eps": 1e-3},
    "mezo-lora": {"lr": 1e-2},
    "mezo-svrg": {"lr": 1e-3, "lr_full": 1e-3, "eps": 1e-3},
    "sparse-mezo": {"lr": 1e-3, "eps": 1e-3},
    "subzero": {"lr": 1e-3, "eps": 1e-3, "rank": 8, "refresh": 2},
    "zo-adam": {"lr": 1e-3, "eps": 1e-3},
    "zo-cons": {"lr": 1e-3, "eps": 1e-3},
    "zo-momentum": {"lr": 1e-3, "eps": 1e-3},
    "zo-muon": {"lr": 1e-3, "rank": 8, "refresh": 2},
    "zo-sign": {"lr": 1e-3, "eps": 1e-3},
}


def pin_args(name: str) -> dict[str, Any]:
    """The hyperparameters a method is pinned with (the table above, else lr 1e-3 where it has one)."""
    if name in PIN_ARGS:
        return dict(PIN_ARGS[name])
    from zobench.registry import method_module

    fields = {f.name for f in dataclasses.fields(method_module(name).Args)}
    return {"lr": 1e-3} if "lr" in fields else {}


def pinned_cell(name: str, args: dict[str, Any]):
    """The smoke suite's shape, spelled out here so that editing suites/smoke.yaml moves no pin."""
    from zobench.api import Cell

    return Cell(suite="pinned", model="random:tiny-llama", task="synthetic", label=name, method=name, args=args,
                seed=0, steps=STEPS, batch_size=4, dtype="fp32", device="cpu", data_seed=0,
                split_sizes={"train": 16, "dev": 8, "test": 8}, max_length=256, eval_batch_size=64,
                timeout_s=600.0, spike_factor=3.0, monitor=False)


def run_pinned(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run the pinned cell in this process; the figures a pin holds, or AssertionError if it failed."""
    from zobench.run.worker import execute_cell

    record = execute_cell({"cell": pinned_cell(name, args).to_dict(), "data_dir": None}, lambda kind, data: None)
    assert record["status"] == "ok", f"{name}: status {record['status']}: {record.get('traceback') or record['error']}"
    return {"args": args, "variant": record["method_info"]["variant"], "loss": record["series"]["loss"],
            "forwards": record["series"]["forwards"], "dev": record["series"]["dev"]}


def load_pins() -> dict[str, dict[str, Any]]:
    return json.loads(PINS.read_text())


def write_pins(pins: dict[str, dict[str, Any]]) -> None:
    import torch

    # Which torch made the pins: a different build may round differently (then update, saying so).
    body = {"_about": f"tests/pin_losses.py --update; torch {torch.__version__}, cpu fp32, {STEPS} steps",
            **{name: pins[name] for name in sorted(pins)}}
    tmp = PINS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    tmp.replace(PINS)  # atomic: an interrupted update leaves the old pins


def main(argv: list[str] | None = None) -> int:
    from zobench.registry import method_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the fresh values to tests/pinned_losses.json")
    parser.add_argument("methods", nargs="*", help="only these methods (default: every method in methods/)")
    opts = parser.parse_args(argv)
    names = opts.methods or method_names()
    pins = {k: v for k, v in load_pins().items() if not k.startswith("_")} if PINS.exists() else {}
    if not opts.methods:  # a full update drops pins of methods that no longer exist
        pins = {k: v for k, v in pins.items() if k in names}
    for name in names:
        fresh = run_pinned(name, pin_args(name))
        old = pins.get(name, {}).get("loss")
        print(f"{name:14s} {fresh['loss']}" + ("" if old == fresh["loss"] else f"   (pinned: {old})"))
        pins[name] = fresh
    if opts.update:
        write_pins(pins)
        print(f"wrote {PINS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
