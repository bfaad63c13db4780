"""The one training loop, run inside a cell's own process: load, evaluate, train, evaluate.

Methods own only the update (``method.step(closure)``); this loop owns the model, data,
timing and evaluation, so every method is measured the same way.
Usage (normally through zobench.launcher): ``run_cell(cell, data_dir, emit, record)``.
"""

from __future__ import annotations

import inspect
import math
import os
import statistics
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from zobench.api import SCHEMA_VERSION, Cell, TrainingPlan, flush
from zobench.checkpoint import BestOnDev
from zobench.env import provenance
from zobench.forward_count import ForwardCounter, TrainBatches
from zobench.models import load_model
from zobench.multigpu import cell_gpus
from zobench.registry import args_dict, make_args, method_module
from zobench.scoring import scoring_for
from zobench.tasks import get_task
from zobench.trackers.divergence import DivergenceTracker
from zobench.trackers.memory import PhaseMemory
from zobench.trackers.monitor import Monitor
from zobench.trackers.nvml import gpu_identity
from zobench.trackers.step_time import StepTimeTracker

Emit = Callable[[str, dict[str, Any]], None]
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


def batch_plan(n_examples: int, batch_size: int) -> dict[str, int]:
    """The batch sizes ``batches`` yields: recorded, so a short or whole-set batch is visible."""
    effective = min(batch_size, n_examples)
    per_epoch = -(-n_examples // effective)
    return {"batch_size": batch_size, "effective_batch_size": effective, "steps_per_epoch": per_epoch,
            "last_batch_size": n_examples - (per_epoch - 1) * effective}


def count_params(params: list[torch.Tensor]) -> int:
    return sum(p.numel() for p in {id(p): p for p in params}.values())


def target_reached(cell: Cell, dev_accuracy: float | None, recent_losses: list[float]) -> bool:
    if cell.target_metric == "dev_accuracy" and dev_accuracy is not None:
        return dev_accuracy >= cell.target_value
    if cell.target_metric == "train_loss" and len(recent_losses) >= TARGET_LOSS_WINDOW:
        return statistics.fmean(recent_losses[-TARGET_LOSS_WINDOW:]) <= cell.target_value
    return False


def start_monitor(cell: Cell, device: str, record: dict[str, Any]) -> tuple[Monitor | None, dict[str, Any]]:
    """Initialise CUDA first, so the monitor's first sample is the bare CUDA-context baseline."""
    baseline: dict[str, Any] = {}
    uuid: str | list[str] | None = None
    if torch.device(device).type == "cuda":
        torch.cuda.init()
        torch.zeros(1, device=device)  # force the context into existence
        baseline = {"torch_reserved_bytes": torch.cuda.memory_reserved(device)}
        record["env"]["gpu"] = gpu_identity(torch.device(device))
        uuid = record["env"]["gpu"].get("uuid")
        if cell.gpus > 1:  # every GPU the cell holds: memory is summed over them
            record["env"]["gpus"] = [gpu_identity(torch.device("cuda", i)) for i in range(cell_gpus(device, cell.gpus))]
            uuid = [g["uuid"] for g in record["env"]["gpus"] if g.get("uuid")]
    monitor = Monitor.start(os.getpid(), uuid) if cell.monitor else None
    return monitor, baseline


def run_cell(cell: Cell, data_dir: str | None, emit: Emit, record: dict[str, Any]) -> None:
    """Run one cell, filling ``record`` as it goes so a crash still leaves what was measured."""
    device = resolve_device(cell.device)
    data_path = Path(data_dir) if data_dir else None
    record["env"] = {**provenance(device), "dtype": cell.dtype}
    metrics = record["metrics"]
    t_start = time.perf_counter()
    monitor, baseline = start_monitor(cell, device, record)
    memory = PhaseMemory(device, monitor, baseline)
    record["_memory"] = memory  # so a failure can still report the peaks reached (popped before sending)

    emit("phase", {"phase": "load"})
    memory.enter("load")
    task = get_task(cell.task)
    # Classifier-head models size their head by the task's labels (LM-BFF tasks set num_labels).
    model, tokenizer, record["model_info"] = load_model(cell.model, cell.dtype, device, seed=cell.seed,
                                                        num_labels=task.num_labels,
                                                        gpus=max(cell_gpus(device, cell.gpus), 1))
    scoring = scoring_for(record["model_info"]["head"], task, tokenizer, device)
    splits = task.load(data_path, cell.split_sizes, cell.data_seed)
    record["data"] = {"task_version": task.version, "synthetic": task.synthetic, "source": splits.source,
                      "data_seed": cell.data_seed, "split_sizes": splits.sizes, "train_loss": task.train_loss,
                      "metric": task.metric}
    train, dev, test = (scoring.encode(s, cell.max_length) for s in (splits.train, splits.dev, splits.test))
    train = scoring.train_examples(train)  # option-lm trains on the gold option's sequence only
    if not train:
        raise ValueError("train split is empty")
    record["data"]["batches"] = batch_plan(len(train), cell.batch_size)
    if len(train) < cell.batch_size:
        warning = (f"batch_size {cell.batch_size} exceeds the {len(train)} training examples: "
                   f"every step uses the whole set as one batch (as MeZO's loader)")
        record.setdefault("warnings", []).append(warning)
        emit("warning", {"message": warning})

    module = method_module(cell.method)
    args = make_args(cell.method, cell.args)
    torch.manual_seed(cell.seed)
    batch_size = record["data"]["batches"]["effective_batch_size"]
    counter = ForwardCounter()  # every forward the method's closures run, extra batches included
    extra = TrainBatches(len(train), batch_size, cell.seed,
                         lambda idx: scoring.collate([train[i] for i in idx]).to(device),
                         lambda b: scoring.loss(model, b), counter)
    plan = TrainingPlan(train_size=len(train), batch_size=batch_size, total_steps=cell.steps, extra_batches=extra)
    # Only methods with schedules over the run (AdaZeta's Q, first-order LR decay) or extra batches take the plan.
    takes_plan = "plan" in inspect.signature(module.build).parameters
    method = module.build(model, args, cell.seed, plan=plan) if takes_plan else module.build(model, args, cell.seed)
    record["method_info"] = {"name": cell.method, "version": module.VERSION, "variant": method.variant,
                             "details": getattr(method, "details", {}),
                             "args": args_dict(args)}
    metrics.update(trainable_params=count_params(method.params), forwards_per_step=method.forwards_per_step)
    if hasattr(method, "drift_probe"):  # ZO methods: how far one perturb/perturb/restore cycle moves θ
        metrics.update(method.drift_probe())
    metrics["load_s"] = time.perf_counter() - t_start

    encoded = {"dev": dev, "test": test}

    def evaluate_on(split: str) -> dict[str, float]:
        """The scoring's metrics, the task's own (accuracy, or F1 for generation tasks; ``data.metric``
        says which) under the record's name ``accuracy``, the training loss under ``loss``."""
        result = scoring.evaluate(model, encoded[split], cell.eval_batch_size)
        return {"accuracy": result.pop(task.metric), **result}

    emit("phase", {"phase": "eval at step 0"})
    memory.enter("eval")
    t_eval = time.perf_counter()
    step0_dev = evaluate_on("dev")
    metrics["step0_dev_accuracy"], step0_dev_loss = step0_dev["accuracy"], step0_dev["loss"]
    metrics.update(as_test_metrics(evaluate_on("test"), "step0_"))
    eval_s = time.perf_counter() - t_eval

    divergence = DivergenceTracker(cell.spike_factor, cell.rebound_delta)
    divergence.start()
    if "restore_drift_max" in metrics:
        divergence.on_restore_drift(metrics["restore_drift_rms"], method.args.lr)
    timer = StepTimeTracker(device, cell.warmup_steps, n_devices=max(cell_gpus(device, cell.gpus), 1))
    divergence.on_eval(0, step0_dev_loss)
    best = BestOnDev(cell.select_on, method.params)
    record["_best"] = best  # so a failure still removes the saved checkpoint (popped before sending)
    losses: list[float] = []
    forwards: list[int] = []  # cumulative forward passes after each step (AdaZeta's Q varies)
    dev_curve = [[0, metrics["step0_dev_accuracy"], step0_dev_loss]]
    sampler = batches(len(train), cell.batch_size, cell.seed)
    emit("phase", {"phase": "train", "steps": cell.steps})
    memory.enter("train")
    timer.start()
    for step in range(cell.steps):
        batch = scoring.collate([train[i] for i in next(sampler)]).to(device)
        timer.before_step(step)  # innermost: only the method's step is timed
        tokens_before = counter.tokens
        loss = method.step(lambda: counter.run(lambda: scoring.loss(model, batch), batch.n_tokens))
        timer.after_step(step, loss, tokens=counter.tokens - tokens_before)
        forwards.append(counter.forwards)
        events = divergence.after_step(step, loss)
        losses.append(loss)
        emit("step", {"step": step + 1, "steps": cell.steps, "loss": loss, "step_time_s": timer.last,
                      "peak_mem_bytes": memory.peak_so_far()})
        dev_accuracy, broken = None, []
        if cell.eval_every and (step + 1) % cell.eval_every == 0 and step + 1 < cell.steps and math.isfinite(loss):
            flush(method)  # a pipelined method's θ is at θ_t + εz_{t+1} between steps
            memory.enter("eval")
            t_eval = time.perf_counter()
            dev = evaluate_on("dev")
            dev_accuracy, dev_loss = dev["accuracy"], dev["loss"]
            eval_s += time.perf_counter() - t_eval
            dev_curve.append([step + 1, dev_accuracy, dev_loss])
            best.offer(step + 1, dev_accuracy, dev_loss)
            events += divergence.on_eval(step + 1, dev_loss)
            broken = divergence.on_params(step + 1, method.params)
            events += broken
            memory.enter("train")
        if "time_to_target_s" not in metrics and target_reached(cell, dev_accuracy, losses):
            metrics.update(time_to_target_s=timer.elapsed(), steps_to_target=step + 1,
                           forwards_to_target=forwards[-1])
        # The stop rules, in one place: a non-finite loss always ends the cell (the weights
        # are gone); spikes and rebounds end it only under divergence_policy "stop".
        if not math.isfinite(loss) or broken or (events and cell.divergence_policy == "stop"):
            record["status"] = "diverged"
            break
    flush(method)  # θ_t for the final evaluation, the checkpoints and the selected restore
    if record["status"] is None and divergence.on_params(len(losses), method.params):  # weights gone, loss finite
        record["status"] = "diverged"
    metrics.update(timer.stop())
    metrics.update(divergence.stop())
    record["divergence"] = metrics.pop("divergence")
    metrics["steps_done"] = len(losses)
    metrics["forwards_total"] = forwards[-1] if forwards else 0
    if losses:  # the mean over the run: AdaZeta's Q grows, MeZO-SVRG's anchor steps cost more
        metrics["forwards_per_step"] = metrics["forwards_total"] / len(losses)
    metrics["final_loss"] = losses[-1] if losses else None

    emit("phase", {"phase": "final eval"})
    memory.enter("eval")
    t_eval = time.perf_counter()
    final_dev = evaluate_on("dev")
    metrics["dev_accuracy"], final_dev_loss = final_dev["accuracy"], final_dev["loss"]
    final_test = evaluate_on("test")
    metrics.update(as_test_metrics(final_test, ""))
    dev_curve.append([len(losses), metrics["dev_accuracy"], final_dev_loss])
    if losses and math.isfinite(losses[-1]):  # after a non-finite loss the final weights are no candidate
        best.offer(len(losses), metrics["dev_accuracy"], final_dev_loss, final=True)
    if best.step is not None:  # the criterion is the cell's select_on
        metrics.update(best_step=best.step, best_dev_accuracy=best.dev_accuracy, best_dev_loss=best.dev_loss)
        if best.step == len(losses):
            best_test = final_test
        else:  # test once more, on the selected checkpoint; the final model's test score stays too
            best.restore()
            best_test = evaluate_on("test")
        metrics.update(as_test_metrics(best_test, "best_"))
    if "time_to_target_s" not in metrics and target_reached(cell, metrics["dev_accuracy"], losses):
        metrics.update(time_to_target_s=timer.elapsed(), steps_to_target=len(losses),
                       forwards_to_target=metrics["forwards_total"])
    metrics["eval_s"] = eval_s + time.perf_counter() - t_eval
    finish_memory(record)
    record["series"].update(loss=losses, step_time_s=timer.times, dev=dev_curve, forwards=forwards)
    metrics["total_s"] = time.perf_counter() - t_start
    if record["status"] is None:
        record["status"] = "ok"


def as_test_metrics(result: dict[str, float], prefix: str) -> dict[str, float]:
    """A test evaluation as record metrics (``step0_accuracy``, ``best_exact_match``): every metric
    but the loss, which records keep for dev only."""
    return {f"{prefix}{name}": value for name, value in result.items() if name != "loss"}


def finish_memory(record: dict[str, Any]) -> None:
    """Fold the memory figures into the record (also after a failure, for the peaks reached)."""
    memory = record.pop("_memory", None)
    if memory is None:
        return
    result = memory.finish()
    record["metrics"].update(result["metrics"])
    record["memory"] = result["details"]
    record.setdefault("series", {})["rss"] = result["rss_timeline"]
    if result["details"]["foreign_gpu_pids"]:
        record.setdefault("warnings", []).append(
            f"other processes used the GPU during this cell: pids {result['details']['foreign_gpu_pids']}")


def new_record(cell: Cell) -> dict[str, Any]:
    """The record skeleton every outcome fills: ok, diverged, oom, error or timeout."""
    return {"schema_version": SCHEMA_VERSION, "cell_id": cell.cell_id, "cell": cell.to_dict(),
            "status": None, "error": None, "metrics": {}, "series": {}}


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
    record = new_record(cell)
    try:
        run_cell(cell, payload["data_dir"], emit, record)
    except Exception as exc:
        record["status"] = status_for(exc)
        record["error"] = "".join(traceback.format_exception_only(exc)).strip()[-2000:]
        record["traceback"] = traceback.format_exc()[-8000:]
        try:
            finish_memory(record)  # the memory an OOM reached is itself a result
        except Exception as exc2:
            record.setdefault("warnings", []).append(f"memory figures lost: {exc2}")
    record.pop("_memory", None)
    best = record.pop("_best", None)
    if best is not None:
        best.close()
    return record
