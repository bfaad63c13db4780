"""The few types every part of zobench agrees on: Cell, Method (API v2), Tracker, Executor, UserError.

A method author needs to read only this file and one existing method in methods/: a method
imports from zobench only this module (``ranged`` and ``loss_in_model_dtype`` included).
This module imports no torch (only for type checking), so the CLI, suite parsing and the
reports can import it without loading torch.
Usage: ``from zobench.api import Cell, Method``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # the types only: importing torch costs seconds the front door does not need
    import torch

SCHEMA_VERSION = 1
STATUSES = ("ok", "oom", "diverged", "error", "timeout")


class UserError(Exception):
    """Bad input from the user: the CLI prints the message on one line and exits 2."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One unit of work: one model × task × method variant × seed. Frozen and JSON-able.

    ``label`` is the suite's name for the method variant (``mezo-hi``); ``method`` is
    the file in methods/ that runs it (``mezo``).
    """

    suite: str
    model: str
    task: str
    label: str
    method: str
    args: dict[str, Any]
    seed: int
    steps: int
    batch_size: int
    dtype: str
    device: str
    data_seed: int
    split_sizes: dict[str, int]
    max_length: int
    eval_batch_size: int
    timeout_s: float
    spike_factor: float
    warmup_steps: int = 1  # timed but left out of step-time statistics
    eval_every: int = 0  # dev evaluation every N steps (0: only before and after training)
    select_on: str = "dev_loss"  # model selection on dev: dev_loss (MeZO's, the HF trainer default) | dev_accuracy
    target_metric: str | None = None  # dev_accuracy | train_loss, for time- and forwards-to-target
    target_value: float | None = None
    divergence_policy: str = "continue"  # continue: count spikes and rebounds; stop: end the cell
    rebound_delta: float = 0.3
    monitor: bool = True  # the NVML/RSS monitor process
    gpus: int = 1  # GPUs the cell holds (a model larger than one GPU spans several: device map)

    @property
    def cell_id(self) -> str:
        """Stable, readable id: the same cell always gets the same file name."""
        model = self.model.split("/")[-1].replace(":", "-")
        return f"{model}--{self.task}--{self.label}--s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["gpus"] == 1:  # the default stays out, so records from before the field still resume
            del out["gpus"]
        return out


Closure = Callable[[], "torch.Tensor"]


class ExtraBatches(Protocol):
    """Training data beyond the step's own batch, for methods whose step needs more (MeZO-SVRG's
    anchor estimate over the full training split). The harness builds it over the cell's training
    split and counts every forward its closures run, one per mini-batch chunk, in the cell's
    forwards (``series.forwards``, ``forwards_total``), exactly like the step closure's."""

    def anchor(self, batches: int = 0) -> Closure:
        """A closure over a fixed set of training examples: the mean mini-batch loss over the whole
        split in ``batch_size`` chunks (``batches`` 0), or over ``batches`` fresh random mini-batches.
        The examples are fixed when the closure is made, so it can be called at θ+εz and θ−εz."""
        ...


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """What the harness will feed a method: every method receives it as ``build(model, args, seed, plan=plan)``;
    those with schedules over the run (AdaZeta's query schedule, the first-order LR decay) or extra
    batches (MeZO-SVRG) use it, the others ignore it (see MethodModule)."""

    train_size: int  # effective number of training examples
    batch_size: int  # effective: the whole set when the suite's batch size exceeds it
    total_steps: int
    # Filled by the worker in a run; None where a method is built without data (tests, ``inspect``).
    extra_batches: ExtraBatches | None = None

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.train_size // self.batch_size)  # ⌈N/B⌉: the last batch of an epoch may be short


@runtime_checkable
class Method(Protocol):
    """How one method updates the model; everything else (data, loop, timing) is the harness's.

    ``step(closure)`` follows ``torch.optim.Optimizer.step(closure)``: the closure runs
    the forward pass on the current batch and returns the loss. The method decides how
    often to call it and under which grad mode. It returns the loss to log.
    """

    params: list[torch.Tensor]  # the tensors this method updates (nothing else may change)
    # Forward passes the last step cost (before the first: the first's); a backward counts separately.
    # The harness counts the forwards its closures actually run; records report the mean per step
    # (``forwards_per_step``), so a method whose cost varies (AdaZeta's Q) updates this as it goes.
    forwards_last_step: int
    variant: str  # which variant of the method ran, recorded with every result
    details: dict[str, Any]  # JSON-able facts about the build (generator, state bytes...): method_info.details

    def step(self, closure: Closure) -> float: ...


class Flushable:
    """Optional base for methods whose step leaves θ away from θ_t between steps.

    Pipelined MeZO applies the next step's perturbation +εz_{t+1} in the same pass as step t's
    update, so between steps the tensors hold θ_t + εz_{t+1}. A method that does this inherits
    from ``Flushable`` (declared, not discovered) and implements ``flush()``; the harness calls
    it before anything outside the step reads θ: every evaluation, checkpoint and restore-drift
    probe, and the end of training. ``flush`` must be cheap to repeat and must not change the
    trajectory: the next ``step`` continues exactly as if no flush had happened.
    """

    def flush(self) -> None:
        raise NotImplementedError


def flush(method: Method) -> None:
    """Put θ at θ_t if ``method`` is a Flushable; a no-op for every other method."""
    if isinstance(method, Flushable):
        method.flush()


class DriftProbed:
    """Optional base for methods that perturb θ in place and restore it (the ZO methods).

    In fp16/bf16 one +εz, −2εz, +εz cycle does not bring θ back exactly; when it moves θ by
    more than one update does, the weights random-walk faster than they learn (MeZO#42). Before
    training the harness calls ``drift_probe()`` once (the cycle on the real parameters) and
    records what it returns, ``restore_drift_max`` and ``restore_drift_rms``, as metrics; an
    RMS above ``drift_limit()`` is a ``restore_drift`` divergence event. A method declares the
    probe by inheriting from ``DriftProbed`` (declared, not discovered) and implementing it.
    """

    args: Any  # the method's Args: the default drift limit is its ``lr``

    def drift_probe(self) -> dict[str, float]:
        raise NotImplementedError

    def drift_limit(self) -> float:
        """The typical size of one update for |g·z| ≈ 1: the learning rate (a heuristic, stated as such)."""
        return self.args.lr


class MethodModule(Protocol):
    """A file in methods/: what the registry (zobench/registry.py) and the worker use of it.

    The worker calls ``build(model, args, seed, plan=plan)`` for every method (Method API v2);
    the optional extras a method may use are all declared here or in its class:
    - ``plan`` (TrainingPlan): the run's sizes, for schedules over the run (AdaZeta's query
      schedule, the first-order LR decay); None outside a run (tests, ``zobench inspect``).
      A method that needs none ignores it;
    - extra batches (``plan.extra_batches``, an ExtraBatches): training data beyond the step's
      batch, counted in the cell's forwards (MeZO-SVRG's anchor); None outside a run;
    - ``drift_probe`` / ``drift_limit``: inherit from DriftProbed;
    - ``flush``: inherit from Flushable;
    - ``forwards_last_step``, ``details``: attributes of every Method (see Method).
    """

    VERSION: str
    Args: type  # a dataclass; suites' dictionaries become one through zobench.registry.make_args

    def build(self, model: Any, args: Any, seed: int, plan: TrainingPlan | None = None) -> Method: ...


Event = dict[str, Any]  # one divergence-like event: {"step", "kind", ...}; the loop's stop rules read them


@dataclasses.dataclass(frozen=True)
class TrackerContext:
    """What a tracker is built from, at the start of the cell (before the model loads)."""

    cell: Cell
    device: str  # resolved: "cpu", "cuda", "cuda:1"
    n_devices: int  # GPUs the cell spans (1 on CPU)
    gpu_uuid: str | list[str] | None  # the GPU(s) NVML should watch; None on CPU
    cuda_baseline: dict[str, Any]  # torch's figures right after the CUDA context existed ({} on CPU)


@dataclasses.dataclass(frozen=True)
class TrainingStart:
    """What trackers learn once the method is built, before the step-0 evaluation."""

    params: list[torch.Tensor]  # the tensors the method trains
    restore_drift_rms: float | None  # DriftProbed methods' probe; None for the others
    drift_limit: float | None  # the RMS drift above which the probe is a divergence event


@dataclasses.dataclass
class Measured:
    """What a tracker hands the record at the end of the cell."""

    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)  # flat, into ``metrics``
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # record sections by name ("memory")
    series: dict[str, list] = dataclasses.field(default_factory=dict)  # into ``series`` ("step_time_s")
    warnings: list[str] = dataclasses.field(default_factory=list)


@runtime_checkable
class Tracker(Protocol):
    """Observes a cell; never steers it (the worker's loop applies the policy to the events it returns).

    The cell's lifecycle, in the order the worker calls it (zobench/measure/measurement.py fans
    every call out to the trackers listed in zobench/measure/registry.py):
    - built by its factory from a ``TrackerContext`` when the cell starts, before the model loads;
    - ``phase(name)`` at every change of phase: "load", "eval", "train" (phases recur);
    - ``start(TrainingStart)`` once the method is built;
    - ``before_step(step)`` / ``after_step(step, loss, tokens)`` around every training step, and
      nothing else inside: ``before_step`` runs in registration order and ``after_step`` in
      reverse, so the step timer (registered last) brackets only the method's step;
    - ``on_eval(step, dev_loss, params)`` whenever θ is read outside a step: the step-0
      evaluation (``params`` None: nothing has trained yet), every dev evaluation during
      training, and once after training (``dev_loss`` None: the weights are checked before the
      final evaluation reads them);
    - ``finish(failed)`` once, at the end; after a failure (``failed``) a tracker returns only
      what is still a result (the memory a crash or an OOM reached), else nothing.
    ``after_step`` and ``on_eval`` return the events they saw (most trackers: none).
    """

    def phase(self, name: str) -> None: ...

    def start(self, training: TrainingStart) -> None: ...

    def before_step(self, step: int) -> None: ...

    def after_step(self, step: int, loss: float, tokens: int) -> list[Event]: ...

    def on_eval(self, step: int, dev_loss: float | None, params: list[torch.Tensor] | None) -> list[Event]: ...

    def finish(self, failed: bool) -> Measured: ...


class PhaseTracker:
    """A base for trackers that watch phases only: the step and evaluation calls do nothing.
    Subclasses implement ``phase`` and ``finish``."""

    def start(self, training: TrainingStart) -> None:
        pass

    def before_step(self, step: int) -> None:
        pass

    def after_step(self, step: int, loss: float, tokens: int) -> list[Event]:
        return []

    def on_eval(self, step: int, dev_loss: float | None, params: list[torch.Tensor] | None) -> list[Event]:
        return []


TrackerFactory = Callable[[TrackerContext], Tracker]  # what zobench/measure/registry.py lists


@runtime_checkable
class Executor(Protocol):
    """Where cells run: this host (``local``), a Ray cluster (``ray``) or Slurm (``slurm``).

    The driver (zobench.run.executors.driver) skips finished cells, claims each cell
    (zobench.run.claims), ``submit``s it and writes the records ``wait`` hands back; every
    engine runs the same isolated cell process (zobench.run.executors.entry), so records,
    trackers and the layout are the same whichever engine ran them.
    """

    name: str  # recorded in every record's ``executor`` section and in the cell's claim
    writes_records: bool  # True: the job stores its own record (Slurm, on the shared results dir)

    def submit(self, cell: Cell, payload: dict[str, Any]) -> str:
        """Queue the cell without blocking; returns its job or task id (stored in the claim)."""
        ...

    def wait(self, timeout_s: float) -> list[tuple[str, dict[str, Any] | None]]:
        """Cells that ended since the last call, as (job id, record); at most ``timeout_s`` of waiting.
        The record is None where the job wrote it itself or died before it could."""
        ...

    def cancel(self) -> None:
        """Cancel every cell submitted and not yet ended (Ctrl-C)."""
        ...


RANGE_KEY = "zobench_range"


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds on a number: ``ge``/``le`` inclusive, ``gt``/``lt`` exclusive; None: unbounded."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def contains(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        parts = [f"{op} {bound:g}" for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if bound is not None]
        return " and ".join(parts) or "finite"


def ranged(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None) -> Any:
    """A method's ``Args`` field with ``default`` and a declared valid range, e.g. ``lr: float = ranged(1e-6, gt=0)``.

    ``zobench.registry.make_args`` reads the declaration (zobench.run.ranges) and refuses a value
    outside it before the first cell starts."""
    return dataclasses.field(default=default, metadata={RANGE_KEY: Range(ge=ge, gt=gt, le=le, lt=lt)})


# Training losses upcast the logits to fp32 unless a ZO method asks for its model's dtype
# (``loss_dtype: model``, as MeZO's fp16 OPT runs computed log-softmax and CE in fp16).
# Declared here, not in the scoring code, so that methods import only this module.
_LOSS_IN_MODEL_DTYPE = contextvars.ContextVar("loss_in_model_dtype", default=False)


@contextlib.contextmanager
def loss_in_model_dtype() -> Iterator[None]:
    """Inside, the harness's losses keep the logits' dtype (fp16/bf16 on a half-precision model)."""
    token = _LOSS_IN_MODEL_DTYPE.set(True)
    try:
        yield
    finally:
        _LOSS_IN_MODEL_DTYPE.reset(token)


def losses_in_model_dtype() -> bool:
    """True inside ``loss_in_model_dtype``: the scoring code keeps the logits' dtype for the loss."""
    return _LOSS_IN_MODEL_DTYPE.get()
class Task(Protocol):
    """What a task declares; one module per task in zobench/tasks/ (see its docstring for the data side).

    Task classes subclass ``Task`` explicitly, so the defaults below are every task's defaults,
    declared in this one place: the harness reads the attributes directly, never with a fallback.
    The values of ``train_loss``, ``metric`` and ``model_kind`` are those zobench.scoring serves
    (its ``SCORINGS`` table); a new metric is a new scoring there plus the task that declares it.
    """

    name: str
    version: str
    synthetic: bool  # records and reports mark synthetic data as such
    description: str
    default_sizes: dict[str, int]  # examples per split (train, dev, test) unless a suite says otherwise
    # How the task trains: ``classification`` (cross-entropy over the option scores, MeZO's
    # --train_as_classification) or ``option-lm`` (teacher-forced LM loss on the gold option only).
    train_loss: str = "classification"
    # The task's score, recorded as ``accuracy`` (``data.metric`` names it): ``accuracy`` (the best
    # option) or ``f1`` (greedy generation against ``Example.answers``, with ``exact_match`` beside it).
    metric: str = "accuracy"
    model_kind: str = "decoder"  # decoder: MeZO's prompts for causal LMs; encoder: LM-BFF's for encoders
    label_words: tuple[str, ...] = ()  # encoder tasks: the word a masked LM predicts for each label
    num_labels: int | None = None  # encoder tasks: the outputs of a classifier head
    sequence_length: int | None = None  # tasks whose every sequence has this many tokens (suites check max_length)

    def load(self, data_dir: Path | None, sizes: dict[str, int], data_seed: int) -> Any:
        """The task's ``zobench.tasks.Splits`` (train, dev, test) of at most ``sizes`` examples."""
        ...


@runtime_checkable
class Scoring(Protocol):
    """How a cell turns a task's examples into batches, losses and metrics for one kind of model head.

    ``zobench.scoring.scoring_for`` builds one for the cell's model head (causal-lm, masked-lm,
    classifier) and task, bound to the tokenizer and device. The worker encodes every split once,
    trains on collated ``train_examples`` with ``loss`` (inside the timed step), and evaluates
    with ``evaluate``; it merges the metrics without knowing which they are.
    """

    def encode(self, examples: Sequence[Any], max_length: int) -> list[Any]:
        """The examples as token ids, each sequence at most ``max_length`` tokens."""
        ...

    def train_examples(self, encoded: list[Any]) -> list[Any]:
        """What a training batch holds of the encoded examples (option-lm: the gold option only)."""
        ...

    def collate(self, encoded: Sequence[Any]) -> Any:
        """A padded batch on the CPU, with ``.to(device)`` and ``.n_tokens``."""
        ...

    def loss(self, model: Any, batch: Any) -> torch.Tensor:
        """The task's training loss on a batch: the closure every method's step calls."""
        ...

    def evaluate(self, model: Any, encoded: Sequence[Any], batch_size: int) -> dict[str, float]:
        """Metrics over the examples, in batches of ``batch_size``: the task's metric under its name
        (``accuracy``, ``f1``), the training loss under ``loss``, and any further ones
        (``exact_match``). NaN for every metric of an empty split."""
        ...
