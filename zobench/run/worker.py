"""The one training loop, run inside a cell's own process: load, evaluate, train, evaluate, assemble.

Methods own only the update (``method.step(closure)``); this loop owns the model, data,
timing and evaluation, so every method is measured the same way. Each phase is a function of
its own; every measurement goes through one Measurement (zobench/measure/measurement.py), and
the loop's policy (eval cadence, model selection, targets, stop rules) stays visible here.
Usage (normally through zobench.run.launcher): ``execute_cell(payload, emit)`` → the record's dict.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from zobench.api import Cell, Event, flush
from zobench.run.cell_load import (Emit, Loaded, Run, as_test_metrics, batch_of, batch_plan, build_method, evaluate_on,
                                load, loss_of, open_device)
from zobench.run.cell_record import CellRecord
from zobench.run.checkpoint import BestOnDev
from zobench.measure.env import provenance
from zobench.run.multigpu import cell_gpus
from zobench.measure.measurement import Measurement

__all__ = ["batch_plan", "batches", "execute_cell", "new_record", "resolve_device", "run_cell", "status_for"]
TARGET_LOSS_WINDOW = 10  # a train-loss target is met by the mean of the last 10 losses


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def batches(n_examples: int, batch_size: int, seed: int):
    """Endless shuffled mini-batches of example indices, reshuffled every epoch, as MeZO's loader
    (the HF Trainer's, drop_last false): an epoch is ⌈N/B⌉ batches, the last one short when B
    does not divide N, and a batch size above N makes every batch the whole set."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n_examples, generator=gen).tolist()
        for start in range(0, n_examples, batch_size):
            yield order[start : start + batch_size]


def target_reached(cell: Cell, dev_accuracy: float | None, recent_losses: list[float]) -> bool:
    if cell.target_metric == "dev_accuracy" and dev_accuracy is not None:
        return dev_accuracy >= cell.target_value
    if cell.target_metric == "train_loss" and len(recent_losses) >= TARGET_LOSS_WINDOW:
        return statistics.fmean(recent_losses[-TARGET_LOSS_WINDOW:]) <= cell.target_value
    return False


@dataclasses.dataclass
class Curve:
    """The training loop's own figures: losses, cumulative forwards, dev points, evaluation time."""

    dev: list[list]
    eval_s: float
    losses: list[float] = dataclasses.field(default_factory=list)
    forwards: list[int] = dataclasses.field(default_factory=list)


# ---- evaluate, train, evaluate -----------------------------------------------------------------

def evaluate_start(run: Run, loaded: Loaded) -> Curve:
    """The zero-shot baseline at step 0 (not a model-selection candidate)."""
    metrics = run.metrics
    run.emit("phase", {"phase": "eval at step 0"})
    run.measure.phase("eval")
    t_eval = time.perf_counter()
    dev = evaluate_on(run, loaded, "dev")
    metrics["step0_dev_accuracy"], dev_loss = dev["accuracy"], dev["loss"]
    metrics.update(as_test_metrics(evaluate_on(run, loaded, "test"), "step0_"))
    curve = Curve(dev=[[0, metrics["step0_dev_accuracy"], dev_loss]], eval_s=time.perf_counter() - t_eval)
    run.measure.on_eval(0, dev_loss, None)
    return curve


def evaluate_during(run: Run, loaded: Loaded, curve: Curve, step: int) -> tuple[float, list]:
    """A dev evaluation between steps: a model-selection candidate; returns (dev accuracy, events)."""
    flush(loaded.method)  # a pipelined method's θ is at θ_t + εz_{t+1} between steps
    run.measure.phase("eval")
    t_eval = time.perf_counter()
    dev = evaluate_on(run, loaded, "dev")
    dev_accuracy, dev_loss = dev["accuracy"], dev["loss"]
    curve.eval_s += time.perf_counter() - t_eval
    curve.dev.append([step, dev_accuracy, dev_loss])
    run.best.offer(step, dev_accuracy, dev_loss)
    events = run.measure.on_eval(step, dev_loss, loaded.method.params)
    run.measure.phase("train")
    return dev_accuracy, events


def should_stop(cell: Cell, loss: float, events: list[Event]) -> bool:
    """The stop rules, in one place: a non-finite loss or non-finite weights always end the cell (the
    weights are gone); spikes and rebounds end it only under divergence_policy "stop"."""
    weights_gone = any(e["kind"] == "non_finite_params" for e in events)
    return not math.isfinite(loss) or weights_gone or (bool(events) and cell.divergence_policy == "stop")


def note_target(run: Run, dev_accuracy: float | None, curve: Curve) -> None:
    """Record time, steps and forwards to the target the first time it is met."""
    if "time_to_target_s" not in run.metrics and target_reached(run.cell, dev_accuracy, curve.losses):
        run.metrics.update(time_to_target_s=run.measure.timer.elapsed(), steps_to_target=len(curve.losses),
                           forwards_to_target=curve.forwards[-1] if curve.forwards else 0)


def train(run: Run, loaded: Loaded, curve: Curve) -> None:
    cell, measure, method, counter = run.cell, run.measure, loaded.method, loaded.counter
    sampler = batches(len(loaded.train), cell.batch_size, cell.seed)
    run.emit("phase", {"phase": "train", "steps": cell.steps})
    measure.phase("train")
    for step in range(cell.steps):
        batch = batch_of(loaded, next(sampler), run.device)
        tokens_before = counter.tokens
        measure.before_step(step)  # the step timer's before_step runs last: only the method's step is timed
        loss = method.step(lambda: counter.run(lambda: loss_of(loaded, batch), batch.n_tokens))
        events = measure.after_step(step, loss, counter.tokens - tokens_before)
        curve.forwards.append(counter.forwards)
        curve.losses.append(loss)
        run.emit("step", {"step": step + 1, "steps": cell.steps, "loss": loss, "step_time_s": measure.timer.last,
                          "peak_mem_bytes": measure.memory.peak_so_far()})
        dev_accuracy = None
        if cell.eval_every and (step + 1) % cell.eval_every == 0 and step + 1 < cell.steps and math.isfinite(loss):
            dev_accuracy, eval_events = evaluate_during(run, loaded, curve, step + 1)
            events += eval_events
        note_target(run, dev_accuracy, curve)
        if should_stop(cell, loss, events):
            run.record.status = "diverged"
            break
    flush(method)  # θ_t for the final evaluation, the checkpoints and the selected restore
    if run.record.status is None and measure.on_eval(len(curve.losses), None, method.params):  # weights gone, loss finite
        run.record.status = "diverged"


def evaluate_final(run: Run, loaded: Loaded, curve: Curve) -> None:
    """Dev and test after training; the best-on-dev checkpoint's test score (selection on dev only)."""
    metrics, best, steps = run.metrics, run.best, len(curve.losses)
    run.emit("phase", {"phase": "final eval"})
    run.measure.phase("eval")
    t_eval = time.perf_counter()
    dev = evaluate_on(run, loaded, "dev")
    metrics["dev_accuracy"], dev_loss = dev["accuracy"], dev["loss"]
    final_test = evaluate_on(run, loaded, "test")
    metrics.update(as_test_metrics(final_test, ""))
    curve.dev.append([steps, metrics["dev_accuracy"], dev_loss])
    if curve.losses and math.isfinite(curve.losses[-1]):  # after a non-finite loss the final weights are no candidate
        best.offer(steps, metrics["dev_accuracy"], dev_loss, final=True)
    if best.step is not None:  # the criterion is the cell's select_on
        metrics.update(best_step=best.step, best_dev_accuracy=best.dev_accuracy, best_dev_loss=best.dev_loss)
        if best.step == steps:
            best_test = final_test
        else:  # test once more, on the selected checkpoint; the final model's test score stays too
            best.restore()
            best_test = evaluate_on(run, loaded, "test")
        metrics.update(as_test_metrics(best_test, "best_"))
    note_target(run, metrics["dev_accuracy"], curve)
    curve.eval_s += time.perf_counter() - t_eval


# ---- the cell ----------------------------------------------------------------------------------

def record_training(run: Run, curve: Curve) -> None:
    """The loop's figures, recorded as soon as training ends: from here on a failure (in the final
    evaluation) still leaves them, and the trackers' figures too (``run.trained``)."""
    metrics = run.metrics
    metrics["steps_done"] = len(curve.losses)
    metrics["forwards_total"] = curve.forwards[-1] if curve.forwards else 0
    if curve.losses:  # the mean over the run: AdaZeta's Q grows, MeZO-SVRG's anchor steps cost more
        metrics["forwards_per_step"] = metrics["forwards_total"] / len(curve.losses)
    metrics["final_loss"] = curve.losses[-1] if curve.losses else None
    run.trained = True


def assemble(run: Run, curve: Curve) -> None:
    """Evaluation time, every tracker's figures and the loop's series into the record."""
    metrics, record = run.metrics, run.record
    metrics["eval_s"] = curve.eval_s
    run.measure.fold_into(record, failed=False)
    record.series.update(loss=curve.losses, dev=curve.dev, forwards=curve.forwards)
    metrics["total_s"] = time.perf_counter() - run.t_start
    if record.status is None:
        record.status = "ok"


def run_cell(run: Run, data_dir: str | None) -> None:
    """Run one cell in its phases, filling ``run.record`` as it goes so a crash still leaves what was measured."""
    cell = run.cell
    run.device = resolve_device(cell.device)
    run.n_devices = max(cell_gpus(run.device, cell.gpus), 1)
    run.record.env = {**provenance(run.device), "dtype": cell.dtype}
    run.t_start = time.perf_counter()
    run.measure = Measurement.for_cell(open_device(run))
    run.emit("phase", {"phase": "load"})
    run.measure.phase("load")
    loaded = load(run, Path(data_dir) if data_dir else None)
    loaded.method = build_method(run, loaded)
    run.metrics["load_s"] = time.perf_counter() - run.t_start
    curve = evaluate_start(run, loaded)
    run.best = BestOnDev(cell.select_on, loaded.method.params)
    train(run, loaded, curve)
    record_training(run, curve)
    evaluate_final(run, loaded, curve)
    assemble(run, curve)


def new_record(cell: Cell) -> dict[str, Any]:
    """The record skeleton every outcome fills: ok, diverged, oom, error or timeout."""
    return CellRecord.new(cell).to_json()


def status_for(exc: BaseException) -> str:
    """An out-of-memory error is a result (status oom), anything else is an error."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return "oom"
    return "error"


def execute_cell(payload: dict[str, Any], emit: Emit) -> dict[str, Any]:
    """Child-process entry point: run the cell and always return a record, also on failure."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # keep the parent's progress display readable
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    cell = Cell(**payload["cell"])
    run = Run(cell, emit, CellRecord.new(cell))
    try:
        run_cell(run, payload["data_dir"])
    except Exception as exc:
        run.record.status = status_for(exc)
        run.record.error = "".join(traceback.format_exception_only(exc)).strip()[-2000:]
        run.record.traceback = traceback.format_exc()[-8000:]
        try:
            if run.measure is not None:  # the memory an OOM reached is itself a result; the rest once trained
                run.measure.fold_into(run.record, failed=not run.trained)
        except Exception as exc2:
            run.record.warn(f"memory figures lost: {exc2}")
    finally:
        if run.best is not None:
            run.best.close()
    return run.record.to_json()
