"""MeZO-SGD (Malladi et al. 2023): two-point SPSA with in-place, seed-regenerated perturbations.

Follows princeton-nlp/MeZO large_models/trainer.py (zo_step / zo_update), see
shared/reference/mezo-and-zo-bench.md §1.1:
  θ+εz → L₊;  θ−εz → L₋;  restore;  g = (L₊−L₋)/2ε;  θ ← θ − lr·(g·z + wd·θ)
where weight decay is skipped for names containing "bias", "layer_norm" or "layernorm"
(the reference rule, kept as is: it does decay Llama's final ``model.norm``).
Differences from the reference code, all recorded in ``variant``:
- perturbations are in place and z never touches the global RNG;
- ``fused_update`` (default) applies the last restore (+εz) and the update (−lr·g·z) in
  one pass: z is generated 3 times a step instead of 4, and the maths is unchanged;
- ``queries`` q > 1 averages q two-point estimates, keeping only (seed, g) pairs;
- ``restore: snapshot`` restores from a copy of θ (exact; costs 1× the trainable tensors),
  for fp16/bf16 weights where +εz−2εz+εz does not return to θ;
- ``generator``: ``counter-philox`` (default) keys z by (seed, element offset in the vector of
  trainable tensors) and adds it inside one kernel with no z temporary, the same values on
  every device and SM count (methods/_zgen.py); ``torch`` is the papers' seeded
  ``torch.randn`` from a private ``torch.Generator``, kept for parity;
- ``flat_buffer`` (counter-philox) keeps the trainable tensors as views of one buffer, so a z
  pass is one launch per weight-decay rule instead of one per tensor (AdaZeta, MeZO-LoRA);
  under counter-philox the tensors are ordered decayed-first, which makes flat = per-tensor;
- ``pipeline`` also fuses the next step's +εz_{t+1} into that pass: 2 passes per step. θ then
  rests at θ_t+εz_{t+1} between steps, so the harness calls ``flush()`` (zobench.api.Flushable)
  before anything reads θ; the step-seed sequence, and so the trajectory, is the unpipelined one.
- ``loss_dtype``: ``fp32`` (default) upcasts the logits for the loss; ``model`` keeps the
  model's dtype, as MeZO's fp16 OPT runs computed log-softmax and CE.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from zobench.api import Closure, DriftProbed, Flushable, TrainingPlan, ranged
from zobench.methods._counter_directions import CounterDirections
from zobench.methods._flat import flatten_
from zobench.methods._zo import (DenseGaussian, LossDtype, Snapshot, draw_step_seed, in_loss_dtype,
                                 restore_drift, two_point)

VERSION = "3"

NO_DECAY_SUBSTRINGS = ("bias", "layer_norm", "layernorm")


@dataclasses.dataclass
class Args:
    lr: float = ranged(1e-6, gt=0)  # the maintainers' rule of thumb for full-parameter MeZO (issue #7)
    eps: float = ranged(1e-3, gt=0)  # zo_eps default in MeZO's run.py
    weight_decay: float = ranged(0.0, ge=0)  # the paper's OPT runs use 0
    queries: int = ranged(1, ge=1)  # q two-point estimates averaged per step (the reference: 1)
    fused_update: bool = True
    restore: Literal["inplace", "snapshot"] = "inplace"
    generator: Literal["counter-philox", "torch"] = "counter-philox"
    pipeline: bool = False  # needs fused_update and restore inplace
    flat_buffer: bool = False  # counter-philox: the trainable tensors as views of one buffer (few launches a pass)
    loss_dtype: LossDtype = "fp32"


def uses_decay(name: str) -> bool:
    return not any(s in name for s in NO_DECAY_SUBSTRINGS)


class MeZO(Flushable, DriftProbed):
    def __init__(self, model: torch.nn.Module, args: Args, seed: int):
        if args.queries < 1:
            raise ValueError("queries must be >= 1")
        if args.pipeline and (args.restore == "snapshot" or not args.fused_update):
            raise ValueError("pipeline fuses restore, update and the next perturbation: it needs fused_update "
                             "and restore 'inplace'")
        if args.flat_buffer and args.generator != "counter-philox":
            raise ValueError("flat_buffer needs generator 'counter-philox' (torch.randn's stream is per tensor)")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if args.generator == "counter-philox":  # decayed tensors first: one flat-buffer run per decay rule
            named.sort(key=lambda item: not uses_decay(item[0]))
        self.params = [p for _, p in named]  # what the harness counts and checkpoints
        # The tensors the z passes run over: the parameters, or the runs of their flat buffer.
        self.segments, self.decay = (flatten_(self.params, [uses_decay(n) for n, _ in named]) if args.flat_buffer
                                     else (self.params, [uses_decay(n) for n, _ in named]))
        self.args = args
        self.directions = CounterDirections(self.segments) if args.generator == "counter-philox" \
            else DenseGaussian(self.segments)
        self.snapshot = Snapshot(self.segments) if args.restore == "snapshot" else None
        self.fused = args.fused_update and self.snapshot is None
        self.forwards_last_step = 2 * args.queries
        self.variant = "reference" + ("+fused-restore-update" if self.fused else "") + \
            ("+pipeline" if args.pipeline else "") + ("+flat-buffer" if args.flat_buffer else "") + \
            (f"+q{args.queries}" if args.queries > 1 else "") + ("+snapshot-restore" if self.snapshot else "") + \
            ("+loss-in-model-dtype" if args.loss_dtype == "model" else "") + f"+z-{self.directions.generator}"
        self.details = {"generator": self.directions.generator, "pipeline": args.pipeline,
                        "z_launches_per_pass": len(self.segments)}
        self.seed_source = torch.Generator().manual_seed(seed)
        self.next_seed: int | None = None  # pipeline: the next step's first seed, drawn ahead
        self.perturbed = False  # pipeline: θ is at θ_t + ε·z(next_seed)
        model.eval()  # the reference runs ZO forwards in eval mode (dropout off)

    @torch.no_grad()
    def step(self, closure: Closure, queries: int | None = None) -> float:
        """One SPSA step with ``queries`` two-point estimates (default: ``args.queries``)."""
        q = queries or self.args.queries
        first = [self.next_seed] if self.next_seed is not None else []
        seeds = first + [draw_step_seed(self.seed_source) for _ in range(q - len(first))]
        closure = in_loss_dtype(closure, self.args.loss_dtype)
        losses, grads = two_point(self.directions, closure, seeds, self.args.eps, self.snapshot,
                                  keep_last_perturbed=self.fused, first_perturbed=self.perturbed)
        self.next_seed = draw_step_seed(self.seed_source) if self.args.pipeline else None
        self.update(seeds, grads, self.next_seed)
        self.perturbed = self.next_seed is not None
        return losses[0]

    @torch.no_grad()
    def flush(self) -> None:
        """Bring θ back to θ_t: undo the next step's +εz already applied (one pass; the seed is kept,
        so the next step perturbs along the same z and the trajectory is unchanged)."""
        if self.perturbed:
            self.directions.add_(self.next_seed, -self.args.eps)
            self.perturbed = False

    @torch.no_grad()
    def update(self, seeds: list[int], grads: list[float], next_seed: int | None = None) -> None:
        """θ ← θ(1 − lr·wd) − lr·mean_i(g_i·z_i), z_i regenerated from each seed.

        When fused, θ is still at θ−εz_last: the last pass adds ε(1 − lr·wd)·z_last as well.
        With ``next_seed`` (pipeline) that pass also adds ε·z(next_seed): the next step's +ε.
        """
        lr, wd, q = self.args.lr, self.args.weight_decay, len(seeds)
        shrinks = [1 - lr * wd if decay and wd else 1.0 for decay in self.decay]
        for i, (seed, g) in enumerate(zip(seeds, grads)):
            first, last = i == 0, i == q - 1
            restore = self.args.eps if self.fused and last else 0.0
            if first:
                for p, shrink in zip(self.segments, shrinks):
                    if shrink != 1.0:
                        p.mul_(shrink)
            # The shrink (first pass) also shrank the pending −εz_last, so the fused
            # restore adds ε·shrink·z_last: (θ−εz+εz)(1−lr·wd) exactly as unfused.
            terms = [(seed, [restore * shrink - lr * g / q for shrink in shrinks])]
            if last and next_seed is not None:
                terms.append((next_seed, [self.args.eps] * len(self.segments)))
            self.directions.axpy_(terms)

    def drift_probe(self, seed: int = 12345) -> dict[str, float]:
        """Restore drift of one +ε, −2ε, restore cycle on the real parameters (before training)."""
        self.flush()

        def cycle() -> None:
            if self.snapshot is not None:
                self.snapshot.save()
            self.directions.add_(seed, self.args.eps)
            self.directions.add_(seed, -2 * self.args.eps)
            if self.snapshot is not None:
                self.snapshot.restore()
            else:
                self.directions.add_(seed, self.args.eps)

        return restore_drift(self.params, cycle)


def build(model: torch.nn.Module, args: Args, seed: int, plan: TrainingPlan | None = None) -> MeZO:
    return MeZO(model, args, seed)
