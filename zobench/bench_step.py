"""ZO step cost side by side in ONE process: floor / mezo / lozo on the same model and batch.

Prints ZO step time / floor step time (the floor is two forward passes) and peak RSS /
floor peak RSS, and writes them as JSON. Methods run in interleaved rounds so machine
noise hits all of them alike; the RSS high-water mark is reset before each block.
Also times one z pass alone (regenerate z, add it to every weight): where ZO time goes.
Usage: ``python -m zobench.bench_step [--model smollm2-135m] [--batch 16] [--tokens 64] [--dtype bf16] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from zobench.env import provenance
from zobench.methods._zo import perturb_
from zobench.models import load_model
from zobench.registry import make_args, method_module
from zobench.store import atomic_write_text
from zobench.trackers.memory import reset_vm_hwm, vm_hwm_bytes

METHODS = ("floor", "mezo", "lozo")


def measure(model_name: str, batch: int, tokens: int, rounds: int, steps: int, device: str, dtype: str = "fp32") -> dict:
    model, _, info = load_model(model_name, dtype, device, seed=0)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens), generator=gen).to(device)

    def closure() -> torch.Tensor:  # plain LM loss on random ids: cost depends on shapes only
        return model(input_ids=ids, labels=ids).loss

    methods = {name: method_module(name).build(model, make_args(name, {}), 0) for name in METHODS}
    times = {name: [] for name in METHODS}
    peaks = {name: 0 for name in METHODS}
    for name, method in methods.items():  # one warm-up step each (allocator, caches)
        method.step(closure)
    for _ in range(rounds):
        for name, method in methods.items():
            reset_vm_hwm()
            for _ in range(steps):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                method.step(closure)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - t0)
            peaks[name] = max(peaks[name], vm_hwm_bytes())
    # Where a ZO step's extra time goes: one pass that regenerates z and adds it to every
    # weight (MeZO's fused step does 3 such passes besides its 2 forwards; unfused, 4).
    params = [p for p in model.parameters() if p.requires_grad]
    pass_times = []
    for i in range(rounds * steps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        perturb_(params, seed=i, scale=0.0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        pass_times.append(time.perf_counter() - t0)
    floor_t, floor_m = statistics.median(times["floor"]), peaks["floor"]
    rows = {name: {"variant": methods[name].variant, "step_time_s": statistics.median(times[name]),
                   "step_time_ratio": statistics.median(times[name]) / floor_t, "peak_rss_bytes": peaks[name],
                   "peak_rss_ratio": peaks[name] / floor_m, "steps_timed": len(times[name])} for name in METHODS}
    return {"model": info["name"], "n_params": info["n_params"], "batch": batch, "tokens": tokens,
            "dtype": dtype, "rounds": rounds, "steps_per_round": steps, "env": provenance(device), "methods": rows,
            "perturb_pass_s": statistics.median(pass_times), "perturb_pass_ratio_to_floor_step": statistics.median(pass_times) / floor_t}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="steps per method per round")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    a = parser.parse_args(argv)
    result = measure(a.model, a.batch, a.tokens, a.rounds, a.steps, a.device, a.dtype)
    print(f"{result['model']}, batch {a.batch} × {a.tokens} tokens, {a.dtype}, {a.device}")
    print(f"{'method':8} {'variant':36} {'step':>9} {'× floor':>8} {'peak RSS':>10} {'× floor':>8}")
    for name, r in result["methods"].items():
        print(f"{name:8} {r['variant']:36} {r['step_time_s'] * 1000:7.0f}ms {r['step_time_ratio']:7.2f}× "
              f"{r['peak_rss_bytes'] / 2**30:8.2f}Gi {r['peak_rss_ratio']:7.3f}×")
    print(f"one z pass (RNG + add over all weights): {result['perturb_pass_s'] * 1000:.0f} ms = "
          f"{result['perturb_pass_ratio_to_floor_step']:.2f}× the floor's step")
    if a.out:
        atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
