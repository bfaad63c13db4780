"""The one training loop, run inside a cell's own process: load, evaluate, train, evaluate.

Methods own only the update (``method.step(closure)``); this loop owns the model, data,
timing and evaluation, so every method is measured the same way.
Usage (normally through zobench.launcher): ``run_cell(cell, data_dir, emit, record)``.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from zobench.api import SCHEMA_VERSION, Cell
from zobench.env import provenance
from zobench.models import load_model
from zobench.registry import args_dict, make_args, method_module
from zobench.scoring import accuracy, classification_loss, collate, encode
from zobench.tasks import get_task
from zobench.trackers.divergence import DivergenceTracker
from zobench.trackers.memory import MemoryTracker
from zobench.trackers.step_time import StepTimeTracker

Emit = Callable[[str, dict[str, Any]], None]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def batches(n_examples: int, batch_size: int, seed: int):
    """Endless shuffled mini-batches of example indices, reshuffled every epoch."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n_examples, generator=gen).tolist()
        for start in range(0, n_examples - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def count_params(params: list[torch.Tensor]) -> int:
    return sum(p.numel() for p in {id(p): p for p in params}.values())


def run_cell(cell: Cell, data_dir: str | None, emit: Emit, record: dict[str, Any]) -> None:
    """Run one cell, filling ``record`` as it goes so a crash still leaves what was measured."""
    device = resolve_device(cell.device)
    data_path = Path(data_dir) if data_dir else None
    record["env"] = {**provenance(device), "dtype": cell.dtype}
    metrics = record["metrics"]
    t_start = time.perf_counter()

    emit("phase", {"phase": "load"})
    model, tokenizer, record["model_info"] = load_model(cell.model, cell.dtype, device, seed=cell.seed)
    task = get_task(cell.task)
    splits = task.load(data_path, cell.split_sizes, cell.data_seed)
    record["data"] = {"task_version": task.version, "synthetic": task.synthetic, "source": splits.source,
                      "data_seed": cell.data_seed, "split_sizes": splits.sizes}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train, dev, test = (encode(tokenizer, s, cell.max_length) for s in (splits.train, splits.dev, splits.test))
    if len(train) < cell.batch_size:
        raise ValueError(f"train split has {len(train)} examples, fewer than batch_size {cell.batch_size}")

    module = method_module(cell.method)
    args = make_args(cell.method, cell.args)
    torch.manual_seed(cell.seed)
    method = module.build(model, args, cell.seed)
    record["method_info"] = {"name": cell.method, "version": module.VERSION, "variant": method.variant,
                             "args": args_dict(args)}
    metrics.update(trainable_params=count_params(method.params), forwards_per_step=method.forwards_per_step)
    metrics["load_s"] = time.perf_counter() - t_start

    def evaluate(examples) -> float:
        return accuracy(model, examples, pad_id, device, cell.eval_batch_size)

    emit("phase", {"phase": "eval at step 0"})
    t_eval = time.perf_counter()
    metrics["step0_dev_accuracy"] = evaluate(dev)
    metrics["step0_accuracy"] = evaluate(test)
    eval_s = time.perf_counter() - t_eval

    memory, divergence = MemoryTracker(device), DivergenceTracker(cell.spike_factor)
    timer = StepTimeTracker(device)
    outer = [memory, divergence]
    losses: list[float] = []
    sampler = batches(len(train), cell.batch_size, cell.seed)
    emit("phase", {"phase": "train", "steps": cell.steps})
    for t in outer + [timer]:
        t.start()
    for step in range(cell.steps):
        batch = collate([train[i] for i in next(sampler)], pad_id).to(device)
        for t in outer:
            t.before_step(step)
        timer.before_step(step)  # innermost: only the method's step is timed
        loss = method.step(lambda: classification_loss(model, batch))
        timer.after_step(step, loss)
        for t in outer:
            t.after_step(step, loss)
        losses.append(loss)
        emit("step", {"step": step + 1, "steps": cell.steps, "loss": loss, "step_time_s": timer.last,
                      "peak_mem_bytes": memory.peak_so_far()})
        if not math.isfinite(loss):  # the stop rule: a non-finite loss ends the cell as diverged
            record["status"] = "diverged"
            break
    for t in outer + [timer]:
        metrics.update(t.stop())
    record["divergence"] = metrics.pop("divergence")
    metrics["steps_done"] = len(losses)
    metrics["forwards_total"] = len(losses) * method.forwards_per_step
    metrics["final_loss"] = losses[-1] if losses else None
    record["series"] = {"loss": losses, "step_time_s": timer.times}

    emit("phase", {"phase": "final eval"})
    t_eval = time.perf_counter()
    metrics["dev_accuracy"] = evaluate(dev)
    metrics["accuracy"] = evaluate(test)
    metrics["eval_s"] = eval_s + time.perf_counter() - t_eval
    metrics["total_s"] = time.perf_counter() - t_start
    if record["status"] is None:
        record["status"] = "ok"


def new_record(cell: Cell) -> dict[str, Any]:
    """The record skeleton every outcome fills: ok, diverged, oom, error or timeout."""
    return {"schema_version": SCHEMA_VERSION, "cell_id": cell.cell_id, "cell": cell.to_dict(),
            "status": None, "error": None, "metrics": {}}


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
        if torch.cuda.is_available():  # what the cell reached before it failed
            record["metrics"]["cuda_max_reserved_bytes"] = torch.cuda.max_memory_reserved()
    return record
