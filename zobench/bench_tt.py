"""What the tensor-train adapters cost, side by side in ONE process (interleaved rounds).

Three figures, on the same model and batch:
1. adapter forward overhead: a forward with AdaZeta's adapters / a forward of the bare model;
2. time per adapter call (down + up) for each contraction path (sequential, parallel, groups-3/4);
3. AdaZeta step time / (2·Q × bare forward time), for fixed Q: what is left besides forwards.
Usage: ``python -m zobench.bench_tt [--model smollm2-135m] [--batch 16] [--tokens 64] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from zobench.api import TrainingPlan
from zobench.measure.env import provenance
from zobench.methods import adazeta
from zobench.methods._tt import CONTRACTIONS
from zobench.methods._tt_adapters import ADAZETA_PRESETS_64, TTAdapter
from zobench.methods._zo import perturb_
from zobench.models import load_model
from zobench.registry import make_args
from zobench.results.store import atomic_write_text


def timed(fn: Callable[[], object], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, device: str) -> dict[str, float]:
    """Median seconds per call of each fn, the fns taking turns so machine noise hits all alike."""
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return {k: statistics.median(v) for k, v in times.items()}


def measure(model_name: str, batch: int, tokens: int, rounds: int, queries: list[int], device: str,
            dtype: str = "fp32") -> dict:
    bare, _, info = load_model(model_name, dtype, device, seed=0)
    ids = torch.randint(0, bare.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(0)).to(device)
    adapted = {}
    for q in queries:  # one adapted copy per Q (each build injects adapters into its model)
        model, _, _ = load_model(model_name, dtype, device, seed=0)
        args = make_args("adazeta", {"schedule": "fixed", "queries": q})
        adapted[q] = (model, adazeta.build(model, args, 0, TrainingPlan(1000, batch, 1000)))
    first_model, first_method = adapted[queries[0]]

    def forward(model: torch.nn.Module) -> Callable[[], torch.Tensor]:
        return lambda: model(input_ids=ids, labels=ids).loss

    with torch.no_grad():
        fwd = interleaved({"bare": forward(bare), "adapted": forward(first_model)}, rounds, device)
    steps: dict[str, Callable[[], object]] = {f"q{q}": (lambda m=m, mod=mod: m.step(forward(mod))) for q, (mod, m) in adapted.items()}
    steps["bare_forward"] = lambda: torch.no_grad()(forward(bare))()
    # One z pass over the adapter tensors (a step makes 3): many small tensors, so on a GPU
    # its cost is kernel launches rather than bytes. ``z_pass`` is the method's own (counter
    # stream over its flat buffer: one launch per weight-decay rule); ``z_pass_per_tensor_torch``
    # the papers' torch.randn per tensor, for comparison.
    steps["z_pass"] = lambda: first_method.zo.directions.add_(0, 0.0)
    steps["z_pass_per_tensor_torch"] = lambda: perturb_(first_method.params, seed=0, scale=0.0)
    step_times = interleaved(steps, rounds, device)

    hidden = bare.config.hidden_size
    h = torch.randn(batch * tokens, hidden, device=device)
    paths = {}
    for contraction in CONTRACTIONS:
        try:
            paths[contraction] = TTAdapter(hidden, 64, 5, contraction, ADAZETA_PRESETS_64, "reference", 1.0, device)
        except ValueError as exc:  # some mode lists allow fewer groups
            print(f"contraction {contraction}: {exc}")
    with torch.no_grad():
        calls = interleaved({k: (lambda a=a: a(h)) for k, a in paths.items()}, rounds * 5, device)

    floor = step_times["bare_forward"]
    return {
        "model": info["name"], "n_params": info["n_params"], "batch": batch, "tokens": tokens, "dtype": "fp32",
        "rounds": rounds, "env": provenance(device), "adazeta_variant": first_method.variant,
        "adapters": len(first_method.sites), "adapter_params": sum(p.numel() for p in first_method.params),
        "forward_s": fwd, "adapter_forward_overhead": fwd["adapted"] / fwd["bare"] - 1,
        "adapter_call_s": calls,
        "adazeta_steps": {k: {"step_s": step_times[k], "queries": int(k[1:]),
                              "ratio_to_2q_bare_forwards": step_times[k] / (2 * int(k[1:]) * floor)}
                          for k in step_times if k.startswith("q")},
        "bare_forward_s": floor, "adapter_z_pass_s": step_times["z_pass"],
        "adapter_z_pass_per_tensor_torch_s": step_times["z_pass_per_tensor_torch"],
        "adapter_tensors": len(first_method.params), "adapter_z_launches": len(first_method.zo.segments),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", default="1,4", help="fixed Q values to time AdaZeta steps at")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"], help="the base model's dtype")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    a = parser.parse_args(argv)
    r = measure(a.model, a.batch, a.tokens, a.rounds, [int(q) for q in a.queries.split(",")], a.device, a.dtype)
    print(f"{r['model']}, batch {a.batch} × {a.tokens} tokens, {a.dtype}, {a.device}; {r['adapters']} adapters, "
          f"{r['adapter_params']:,} params in {r['adapter_tensors']} tensors")
    print(f"forward: bare {r['forward_s']['bare'] * 1e3:.1f} ms, with adapters {r['forward_s']['adapted'] * 1e3:.1f} ms "
          f"(+{r['adapter_forward_overhead']:.1%})")
    for name, s in r["adapter_call_s"].items():
        print(f"adapter call, {name:10} {s * 1e3:8.3f} ms")
    for name, s in r["adazeta_steps"].items():
        print(f"adazeta Q={s['queries']}: step {s['step_s'] * 1e3:.0f} ms = {s['ratio_to_2q_bare_forwards']:.3f} × "
              f"(2Q × bare forward {r['bare_forward_s'] * 1e3:.0f} ms)")
    print(f"one z pass over the adapter tensors: {r['adapter_z_pass_s'] * 1e3:.1f} ms in {r['adapter_z_launches']} "
          f"launches (per tensor with torch.randn: {r['adapter_z_pass_per_tensor_torch_s'] * 1e3:.1f} ms, "
          f"{r['adapter_tensors']} tensors)")
    if a.out:
        atomic_write_text(a.out, json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()
