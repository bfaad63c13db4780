"""The load phase of a cell, and the scoring seam: what zobench.run.worker's phases share.

``Run`` carries the cell, its record and the live objects a failure must still fold or close;
``load`` gives the model with its data encoded for the model's head (``Loaded``); ``build_method``
builds the method with the run's plan (Method API v2, zobench/api.py). Every call into the
scorers and generation sits in the scoring-seam functions below, nowhere else.
Usage: ``context = open_device(run); loaded = load(run, data_path); loaded.method = build_method(run, loaded)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import torch

from zobench.api import Cell, DriftProbed, Method, TrackerContext, TrainingPlan, TrainingStart
from zobench.run.cell_record import CellRecord
from zobench.run.checkpoint import BestOnDev
from zobench.measure.forward_count import ForwardCounter, TrainBatches
from zobench.models import load_model
from zobench.run.multigpu import cell_gpus
from zobench.registry import args_dict, make_args, method_module
from zobench.scoring import scoring_for
from zobench.tasks import get_task
from zobench.measure.measurement import Measurement
from zobench.measure.nvml import gpu_identity

Emit = Callable[[str, dict[str, Any]], None]


@dataclasses.dataclass
class Run:
    """What every phase shares: the cell, its record, and the live objects a failure must still
    fold (the measurement) or close (the best-on-dev checkpoint)."""

    cell: Cell
    emit: Emit
    record: CellRecord
    device: str = "cpu"  # resolved
    n_devices: int = 1  # GPUs the cell spans
    t_start: float = 0.0  # perf_counter when the cell started (after the provenance)
    measure: Measurement | None = None
    best: BestOnDev | None = None
    trained: bool = False  # the training loop ended: its trackers' figures are results even if a later phase fails

    @property
    def metrics(self) -> dict[str, Any]:
        return self.record.metrics


@dataclasses.dataclass
class Loaded:
    """What the load phase hands on: the model, its encoded data, the method and the forward counter."""

    model: torch.nn.Module
    tokenizer: Any
    scoring: Any
    metric: str  # the task's own metric, recorded as ``accuracy``
    train: list
    encoded: dict[str, list]  # "dev", "test"
    counter: ForwardCounter
    method: Method | None = None


def batch_plan(n_examples: int, batch_size: int) -> dict[str, int]:
    """The batch sizes ``batches`` yields: recorded, so a short or whole-set batch is visible."""
    effective = min(batch_size, n_examples)
    per_epoch = -(-n_examples // effective)
    return {"batch_size": batch_size, "effective_batch_size": effective, "steps_per_epoch": per_epoch,
            "last_batch_size": n_examples - (per_epoch - 1) * effective}


def count_params(params: list[torch.Tensor]) -> int:
    return sum(p.numel() for p in {id(p): p for p in params}.values())


# ---- the scoring seam: every call into scorers/generation is in these functions ----------------

def make_scoring(run: Run, head: str, task: Any, tokenizer: Any) -> Any:
    return scoring_for(head, task, tokenizer, run.device)


def encode_data(run: Run, scoring: Any, tokenizer: Any, splits: Any) -> tuple[list, dict[str, list]]:
    """The splits encoded for the model's head: (train examples, {"dev", "test"})."""
    train, dev, test = (scoring.encode(s, run.cell.max_length) for s in (splits.train, splits.dev, splits.test))
    return scoring.train_examples(train), {"dev": dev, "test": test}  # option-lm trains on the gold option's sequence


def batch_of(loaded: Loaded, indices: list[int], device: str) -> Any:
    return loaded.scoring.collate([loaded.train[i] for i in indices]).to(device)


def loss_of(loaded: Loaded, batch: Any) -> torch.Tensor:
    return loaded.scoring.loss(loaded.model, batch)


def evaluate_on(run: Run, loaded: Loaded, split: str) -> dict[str, float]:
    """The scoring's metrics: the task's own (accuracy, or F1 for generation tasks; ``data.metric``
    says which) under the record's name ``accuracy``, the training loss under ``loss``, and any
    further metric (exact match) under its own name."""
    result = loaded.scoring.evaluate(loaded.model, loaded.encoded[split], run.cell.eval_batch_size)
    return {"accuracy": result.pop(loaded.metric), **result}


def as_test_metrics(result: dict[str, float], prefix: str) -> dict[str, float]:
    """A test evaluation as record metrics (``step0_accuracy``, ``best_exact_match``): every metric
    but the loss, which records keep for dev only."""
    return {f"{prefix}{name}": value for name, value in result.items() if name != "loss"}


# ---- load --------------------------------------------------------------------------------------

def open_device(run: Run) -> TrackerContext:
    """Initialise CUDA first, so the monitor's first sample is the bare CUDA-context baseline; the GPU
    identities go into the record's ``env``."""
    cell, device, env = run.cell, run.device, run.record.env
    baseline: dict[str, Any] = {}
    uuid: str | list[str] | None = None
    if torch.device(device).type == "cuda":
        torch.cuda.init()
        torch.zeros(1, device=device)  # force the context into existence
        baseline = {"torch_reserved_bytes": torch.cuda.memory_reserved(device)}
        env["gpu"] = gpu_identity(torch.device(device))
        uuid = env["gpu"].get("uuid")
        if cell.gpus > 1:  # every GPU the cell holds: memory is summed over them
            env["gpus"] = [gpu_identity(torch.device("cuda", i)) for i in range(cell_gpus(device, cell.gpus))]
            uuid = [g["uuid"] for g in env["gpus"] if g.get("uuid")]
    return TrackerContext(cell, device, run.n_devices, uuid, baseline)


def load(run: Run, data_path: Path | None) -> Loaded:
    """The model, the task's data encoded for its head, and the batch plan (with a warning when short)."""
    cell, record = run.cell, run.record
    task = get_task(cell.task)
    # Classifier-head models size their head by the task's labels (LM-BFF tasks set num_labels).
    model, tokenizer, record.model_info = load_model(cell.model, cell.dtype, run.device, seed=cell.seed,
                                                     num_labels=task.num_labels, gpus=run.n_devices)
    scoring = make_scoring(run, record.model_info["head"], task, tokenizer)
    splits = task.load(data_path, cell.split_sizes, cell.data_seed)
    metric = task.metric
    record.data = {"task_version": task.version, "synthetic": task.synthetic, "source": splits.source,
                   "data_seed": cell.data_seed, "split_sizes": splits.sizes, "train_loss": task.train_loss,
                   "metric": metric}
    train, encoded = encode_data(run, scoring, tokenizer, splits)
    if not train:
        raise ValueError("train split is empty")
    record.data["batches"] = batch_plan(len(train), cell.batch_size)
    if len(train) < cell.batch_size:
        warning = (f"batch_size {cell.batch_size} exceeds the {len(train)} training examples: "
                   f"every step uses the whole set as one batch (as MeZO's loader)")
        record.warn(warning)
        run.emit("warning", {"message": warning})
    return Loaded(model, tokenizer, scoring, metric, train, encoded, ForwardCounter())


def build_method(run: Run, loaded: Loaded) -> Method:
    """Build the method with the run's plan (Method API v2), record it, and probe its restore drift."""
    cell, metrics = run.cell, run.metrics
    module = method_module(cell.method)
    args = make_args(cell.method, cell.args)
    torch.manual_seed(cell.seed)
    batch_size = run.record.data["batches"]["effective_batch_size"]
    # Every forward the method's closures run is counted, extra batches included.
    extra = TrainBatches(len(loaded.train), batch_size, cell.seed, lambda idx: batch_of(loaded, idx, run.device),
                         lambda b: loss_of(loaded, b), loaded.counter)
    plan = TrainingPlan(train_size=len(loaded.train), batch_size=batch_size, total_steps=cell.steps,
                        extra_batches=extra)
    method = module.build(loaded.model, args, cell.seed, plan=plan)
    run.record.method_info = {"name": cell.method, "version": module.VERSION, "variant": method.variant,
                              "details": method.details, "args": args_dict(args)}
    metrics.update(trainable_params=count_params(method.params), forwards_per_step=method.forwards_last_step)
    drift_rms = limit = None
    if isinstance(method, DriftProbed):  # ZO methods: how far one perturb/perturb/restore cycle moves θ
        metrics.update(method.drift_probe())
        drift_rms, limit = metrics["restore_drift_rms"], method.drift_limit()
    run.measure.start(TrainingStart(method.params, drift_rms, limit))
    return method
