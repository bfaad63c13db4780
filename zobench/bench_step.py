"""ZO step cost side by side in ONE process: floor / MeZO variants / LOZO on the same model and batch.

Prints ZO step time / floor step time (the floor is two forward passes) and peak RSS /
floor peak RSS, and writes them as JSON. Methods run in interleaved rounds so machine
noise hits all of them alike; the RSS high-water mark is reset before each block.
MeZO runs as ``mezo`` (the defaults: counter-philox z, fused restore+update, 3 z passes a
step), ``mezo-pipeline`` (2 passes a step) and ``mezo-torch`` (the papers' torch.randn path).
Also times one z pass alone (add c·z to every weight) per generator, and the 2-term pass the
pipeline uses. On a GPU it reports the bytes a z pass must move (each weight read and written
once: z is never stored), the achieved GB/s, and that as a fraction of the GPU model's peak
(zobench/measure/gpu_peaks.py), with the GPU's name and SM count.
Usage: ``python -m zobench.bench_step [--model smollm2-135m] [--batch 16] [--tokens 64] [--dtype bf16] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from zobench.api import flush
from zobench.measure.env import provenance
from zobench.measure.gpu_peaks import peak_bandwidth
from zobench.methods._counter_directions import CounterDirections
from zobench.methods._zgen import axpy_
from zobench.methods._zo import perturb_
from zobench.models import load_model
from zobench.registry import make_args, method_module
from zobench.results.store import atomic_write_text
from zobench.measure.memory import reset_vm_hwm, vm_hwm_bytes

# row name → (method file, options): the rows of the table, in order.
ROWS: dict[str, tuple[str, dict]] = {
    "floor": ("floor", {}),
    "mezo": ("mezo", {}),
    "mezo-pipeline": ("mezo", {"pipeline": True}),
    "mezo-torch": ("mezo", {"generator": "torch"}),
    "lozo": ("lozo", {}),
}


def timed(fn: Callable[[], object], cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def z_pass_figures(params: list[torch.Tensor], repeats: int, device: str) -> dict:
    """Median time of one z pass over every weight, per generator, and on a GPU its bandwidth."""
    cuda = device.startswith("cuda")
    offsets = CounterDirections(params).offsets

    def counter_pass(seeds: list[int]) -> None:  # c = 0: the weights stay as they are, the work is all done
        for p, offset in zip(params, offsets):
            axpy_(p.data, 0, [(s, 0.0) for s in seeds], offset=offset)

    passes = {
        "counter-philox": lambda i: counter_pass([i]),
        "counter-philox-2terms": lambda i: counter_pass([i, i + 1]),  # the pipelined pass
        "torch": lambda i: perturb_(params, seed=i, scale=0.0),
    }
    out = {}
    for name, run in passes.items():
        run(0)  # warm-up (kernel build, caches)
        out[name] = {"z_pass_s": statistics.median(timed(lambda: run(i + 1), cuda) for i in range(repeats))}
    bytes_moved = 2 * sum(p.numel() * p.element_size() for p in params)  # read + write each weight once
    figures = {"z_pass": out, "z_pass_bytes": bytes_moved}
    if cuda:
        props = torch.cuda.get_device_properties(torch.device(device))
        peak = peak_bandwidth(props.name)
        for row in out.values():
            row["achieved_bytes_per_s"] = bytes_moved / row["z_pass_s"]
            row["fraction_of_peak"] = row["achieved_bytes_per_s"] / peak if peak else None
        figures.update(gpu_name=props.name, gpu_sm_count=props.multi_processor_count, peak_bytes_per_s=peak)
    return figures


def measure(model_name: str, batch: int, tokens: int, rounds: int, steps: int, device: str, dtype: str = "fp32",
            rows: dict[str, tuple[str, dict]] | None = None) -> dict:
    rows = rows or ROWS
    cuda = device.startswith("cuda")
    model, _, info = load_model(model_name, dtype, device, seed=0)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens), generator=gen).to(device)

    def closure() -> torch.Tensor:  # plain LM loss on random ids: cost depends on shapes only
        return model(input_ids=ids, labels=ids).loss

    methods = {name: method_module(file).build(model, make_args(file, options), 0) for name, (file, options) in rows.items()}
    times = {name: [] for name in rows}
    peaks = {name: 0 for name in rows}
    for method in methods.values():  # one warm-up step each (allocator, caches, kernel builds)
        method.step(closure)
        flush(method)
    for _ in range(rounds):
        for name, method in methods.items():
            reset_vm_hwm()
            for _ in range(steps):
                times[name].append(timed(lambda: method.step(closure), cuda))
            flush(method)  # the pipelined row leaves +εz pending; the other rows share the model
            peaks[name] = max(peaks[name], vm_hwm_bytes())
    floor_t, floor_m = statistics.median(times["floor"]), peaks["floor"]
    table = {name: {"variant": methods[name].variant, "step_time_s": statistics.median(times[name]),
                    "step_time_ratio": statistics.median(times[name]) / floor_t, "peak_rss_bytes": peaks[name],
                    "peak_rss_ratio": peaks[name] / floor_m, "steps_timed": len(times[name])} for name in rows}
    params = [p for p in model.parameters() if p.requires_grad]
    z = z_pass_figures(params, rounds * steps, device)
    for row in z["z_pass"].values():
        row["ratio_to_floor_step"] = row["z_pass_s"] / floor_t
    return {"model": info["name"], "n_params": info["n_params"], "batch": batch, "tokens": tokens,
            "dtype": dtype, "rounds": rounds, "steps_per_round": steps, "env": provenance(device), "methods": table,
            **z, "perturb_pass_s": z["z_pass"]["torch"]["z_pass_s"],
            "perturb_pass_ratio_to_floor_step": z["z_pass"]["torch"]["ratio_to_floor_step"]}


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
    print(f"{'method':14} {'variant':52} {'step':>9} {'× floor':>8} {'peak RSS':>10} {'× floor':>8}")
    for name, r in result["methods"].items():
        print(f"{name:14} {r['variant']:52} {r['step_time_s'] * 1000:7.0f}ms {r['step_time_ratio']:7.2f}× "
              f"{r['peak_rss_bytes'] / 2**30:8.2f}Gi {r['peak_rss_ratio']:7.3f}×")
    print(f"one z pass over all weights ({result['z_pass_bytes'] / 1e9:.2f} GB to read and write):")
    for name, r in result["z_pass"].items():
        line = f"  {name:22} {r['z_pass_s'] * 1000:8.1f} ms = {r['ratio_to_floor_step']:.3f}× the floor's step"
        if "achieved_bytes_per_s" in r:
            fraction = f", {r['fraction_of_peak']:.0%} of peak" if r["fraction_of_peak"] else " (peak unknown)"
            line += f", {r['achieved_bytes_per_s'] / 1e9:.0f} GB/s{fraction}"
        print(line)
    if "gpu_name" in result:
        print(f"GPU: {result['gpu_name']}, {result['gpu_sm_count']} SMs, peak {result['peak_bytes_per_s'] or 0:.3g} B/s")
    if a.out:
        atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
