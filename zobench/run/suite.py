"""Suites: YAML specs of models × tasks × methods (with hyperparameters) × seeds, expanded into cells.

Everything is validated before the first cell runs, so bad input never writes a record.
A suite may list ``pending`` methods and tasks (``{methods: {name: reason}, tasks: {name: reason}}``):
ones its paper table has but zobench cannot run yet. They are kept in the file so the
suite stays the paper's, and skipped with one line each (``pending_for``) until they exist
and move into ``methods`` / ``tasks``.
Usage: ``cells = expand(load_suite("quickstart"), Overrides(steps=5))``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from pathlib import Path
from typing import Any

import yaml

from zobench.api import Cell, UserError
from zobench.paths import check_file_stem, check_name, shorten
from zobench.run.ranges import Range, check_range
from zobench.registry import make_args, method_names
from zobench.run.strict_yaml import strict_load
from zobench.tasks import get_task, task_names
from zobench.results.thresholds import parse_thresholds

# Suite-level settings, their types and defaults. Method entries may override the
# harness settings in METHOD_OVERRIDES (ZO methods usually run far more steps than FO).
SETTINGS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "name": (str, None),
    "description": (str, ""),
    "models": (list, None),
    "tasks": (list, None),
    "methods": (dict, None),
    "seeds": (list, [0]),
    "steps": (int, 100),
    "batch_size": (int, 16),
    "dtype": (str, "fp32"),
    "device": (str, "auto"),
    "data_seed": ((int, str), 0),  # or "seed": each cell's seed picks its data (LM-BFF's k-shot splits)
    "split_sizes": (dict, {}),
    "max_length": (int, 256),
    "eval_batch_size": (int, 64),
    "timeout_s": ((int, float), 3600),
    "spike_factor": ((int, float), 3.0),
    "rebound_delta": ((int, float), 0.3),
    "divergence_policy": (str, "continue"),
    "warmup_steps": (int, 1),
    "eval_every": (int, 0),
    "select_on": (str, "dev_loss"),  # model selection on dev: dev_loss (MeZO's) | dev_accuracy
    "target": (dict, {}),
    "monitor": (bool, True),
    "thresholds": (dict, {}),  # the regression gate's, over zobench.results.thresholds.DEFAULT_THRESHOLDS
    "pending": (dict, {}),
    "gpus": (int, 1),  # GPUs per cell; a model larger than one GPU spans several (device map)
    "executor": (dict, {}),  # engine and per-engine options (zobench.run.executors), overridden by the CLI
}
PENDING_KINDS = ("methods", "tasks")
# eval_every too: papers validate at a fraction of each method's own run (MeZO: every 1/5).
METHOD_OVERRIDES = {"steps": int, "batch_size": int, "monitor": bool, "eval_every": int, "dtype": str, "gpus": int}
POLICIES = ("continue", "stop")
TARGET_METRICS = ("dev_accuracy", "train_loss")
DEVICES = ("auto", "cpu", "cuda")
# The valid range of every numeric suite setting (checked before the first cell starts).
RANGES = {
    "steps": Range(ge=1), "batch_size": Range(ge=1), "max_length": Range(ge=8), "eval_batch_size": Range(ge=1),
    "timeout_s": Range(gt=0), "spike_factor": Range(gt=1), "rebound_delta": Range(gt=0), "warmup_steps": Range(ge=0),
    "eval_every": Range(ge=0), "data_seed": Range(ge=0), "seeds": Range(ge=0), "split_sizes": Range(ge=1),
}
SPLITS = ("train", "dev", "test")


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    source: str
    settings: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Pending:
    kind: str  # "method" or "task"
    name: str
    reason: str
    available: bool  # it exists now: the entry should move into the suite proper

    def message(self, source: str) -> str:
        if self.available:
            return (f"pending {self.kind} '{self.name}' exists now; move it into {self.kind}s: in {source} "
                    f"to run it (skipped)")
        return f"pending {self.kind} '{self.name}' skipped: {self.reason}"


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Command-line changes to a suite: ``methods`` filters labels; the rest replace."""

    methods: list[str] | None = None
    tasks: list[str] | None = None
    models: list[str] | None = None
    seeds: list[int] | None = None
    steps: int | None = None
    split_sizes: dict[str, int] | None = None  # over the suite's (smoke runs of paper suites)


def suite_names() -> list[str]:
    files = importlib.resources.files("zobench.suites").iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def load_suite(name_or_path: str) -> Suite:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise UserError(f"suite file '{name_or_path}' does not exist; built-in suites: {', '.join(suite_names())}")
        text, source = path.read_text(encoding="utf-8"), str(path.resolve())
    elif name_or_path in suite_names():
        text = (importlib.resources.files("zobench.suites") / f"{name_or_path}.yaml").read_text(encoding="utf-8")
        source = f"zobench.suites/{name_or_path}.yaml"
    else:
        raise UserError(f"unknown suite '{name_or_path}'; valid suites: {', '.join(suite_names())} (or a path to a .yaml file)")
    return parse_suite(text, source)


def parse_suite(text: str, source: str) -> Suite:
    try:
        raw = strict_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"suite {source}: malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise UserError(f"suite {source}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise UserError(f"suite {source}: unknown setting(s) {shorten(', '.join(map(str, unknown)))}; valid: {', '.join(SETTINGS)}")
    settings = {}
    for key, (kind, default) in SETTINGS.items():
        if key not in raw:
            if default is None:
                raise UserError(f"suite {source}: missing required setting '{key}'")
            settings[key] = default
            continue
        value = raw[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise UserError(f"suite {source}: setting '{key}' must be {names}, got {type(value).__name__} {shorten(value)}")
        check_range(value, RANGES.get(key), f"suite {source}: setting '{key}'")
        settings[key] = value
    check_name(settings["name"], f"suite {source}: name")
    _check_lists(settings, source)
    parse_thresholds(settings["thresholds"], f"suite {source}")
    _check_pending(settings, source)
    return Suite(settings["name"], source, settings)


def _check_lists(settings: dict[str, Any], source: str) -> None:
    """Non-empty lists of the right kind (an empty one would expand to zero cells), and split sizes."""
    for key, kind in (("models", str), ("tasks", str), ("seeds", int)):
        values = settings[key]
        if not values or any(not isinstance(v, kind) or isinstance(v, bool) for v in values):
            raise UserError(f"suite {source}: setting '{key}' must be a non-empty list of {kind.__name__}s, "
                            f"got {shorten(values)}")
        for value in values:
            check_range(value, RANGES.get(key), f"suite {source}: a value of '{key}'")
    if not settings["methods"]:
        raise UserError(f"suite {source}: setting 'methods' is empty; name at least one method")
    for label in settings["methods"]:
        check_name(label, f"suite {source}: methods label")
    sizes = settings["split_sizes"]
    unknown = sorted(map(str, set(sizes) - set(SPLITS)))
    if unknown:
        raise UserError(f"suite {source}: unknown split(s) in split_sizes: {shorten(', '.join(unknown))}; valid: {', '.join(SPLITS)}")
    for split, size in sizes.items():
        if not isinstance(size, int) or isinstance(size, bool):
            raise UserError(f"suite {source}: split_sizes.{split} must be int, got {shorten(size)}")
        check_range(size, RANGES["split_sizes"], f"suite {source}: split_sizes.{split}")


def _check_pending(settings: dict[str, Any], source: str) -> None:
    pending = settings["pending"]
    unknown = sorted(set(pending) - set(PENDING_KINDS))
    if unknown:
        raise UserError(f"suite {source}: pending takes {' and '.join(PENDING_KINDS)}, got {', '.join(unknown)}")
    for kind, entries in pending.items():
        if not isinstance(entries, dict) or not all(isinstance(r, str) and r.strip() for r in entries.values()):
            raise UserError(f"suite {source}: pending {kind} must map each name to a reason, got {shorten(entries)}")
    listed = {"methods": set(map(str, settings["methods"])), "tasks": set(map(str, settings["tasks"]))}
    for kind, entries in pending.items():
        both = sorted(set(map(str, entries)) & listed[kind])
        if both:
            raise UserError(f"suite {source}: {', '.join(both)} listed both in {kind} and in pending {kind}")


def pending_for(suite: Suite, overrides: Overrides = Overrides()) -> list[Pending]:
    """The suite's pending entries that this run would have included (one line each to print)."""
    chosen = {"methods": overrides.methods, "tasks": overrides.tasks}
    exists = {"methods": set(method_names()), "tasks": set(task_names())}
    out = []
    for kind in PENDING_KINDS:
        for name, reason in suite.settings["pending"].get(kind, {}).items():
            if chosen[kind] is None or str(name) in chosen[kind]:
                out.append(Pending(kind[:-1], str(name), reason.strip(), str(name) in exists[kind]))
    return out


def _method_entries(suite: Suite) -> dict[str, dict[str, Any]]:
    entries = {}
    for label, entry in suite.settings["methods"].items():
        entry = {} if entry is None else entry
        if not isinstance(entry, dict):
            raise UserError(f"suite {suite.source}: method '{label}' must map to hyperparameters, got {shorten(entry)}")
        entries[str(label)] = dict(entry)
    return entries


def _target(target: dict[str, Any], where: str) -> tuple[str | None, float | None]:
    """``target: {metric: dev_accuracy | train_loss, value: x}`` for time- and forwards-to-target."""
    if not target:
        return None, None
    if set(target) != {"metric", "value"} or target["metric"] not in TARGET_METRICS \
            or not isinstance(target["value"], (int, float)) or isinstance(target["value"], bool):
        raise UserError(f"{where}: target must be {{metric: {' | '.join(TARGET_METRICS)}, value: <number>}}, got {shorten(target)}")
    check_range(float(target["value"]), None, f"{where}: target value")
    return target["metric"], float(target["value"])


def _check_settings(s: dict[str, Any], where: str) -> None:
    """The suite-wide settings that name a choice: dtype, device, data_seed, select_on, divergence_policy."""
    # Here, not at the top: these modules import torch, which parsing a suite (list, compare) need not load.
    from zobench.run.checkpoint import SELECT_ON
    from zobench.models import DTYPES

    if s["dtype"] not in DTYPES:
        raise UserError(f"{where}: unknown dtype '{s['dtype']}'; valid: {', '.join(DTYPES)}")
    if s["device"] not in DEVICES and not s["device"].startswith("cuda:"):
        raise UserError(f"{where}: unknown device '{s['device']}'; valid: {', '.join(DEVICES)}, cuda:N")
    if isinstance(s["data_seed"], str) and s["data_seed"] != "seed":
        raise UserError(f"{where}: data_seed must be an integer or 'seed' (each cell's seed), got {s['data_seed']!r}")
    if s["select_on"] not in SELECT_ON:
        raise UserError(f"{where}: unknown select_on '{s['select_on']}'; valid: {', '.join(SELECT_ON)}")
    if s["divergence_policy"] not in POLICIES:
        raise UserError(f"{where}: unknown divergence_policy '{s['divergence_policy']}'; valid: {', '.join(POLICIES)}")


def _harness_overrides(entry: dict[str, Any], label: str, s: dict[str, Any], where: str) -> dict[str, Any]:
    """The harness settings a method entry overrides (popped from ``entry``), checked."""
    from zobench.models import DTYPES  # imports torch: see _check_settings

    harness = {}
    for key, kind in METHOD_OVERRIDES.items():
        if key in entry:
            value = entry.pop(key)
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise UserError(f"{where}: '{key}' of method '{label}' must be {kind.__name__}, got {shorten(value)}")
            check_range(value, RANGES.get(key), f"{where}: '{key}' of method '{label}'")
            harness[key] = value
    if harness.get("dtype", s["dtype"]) not in DTYPES:
        raise UserError(f"{where}: unknown dtype '{harness['dtype']}' for method '{label}'; valid: {', '.join(DTYPES)}")
    if harness.get("gpus", s["gpus"]) < 1:
        raise UserError(f"{where}: gpus of method '{label}' must be at least 1, got {harness.get('gpus', s['gpus'])}")
    return harness


def expand(suite: Suite, overrides: Overrides = Overrides()) -> list[Cell]:
    """The cartesian product of the suite, validated; raises UserError on any bad name or value."""
    s = suite.settings
    where = f"suite {suite.source}"
    pending = {kind: set(map(str, s["pending"].get(kind, {}))) for kind in PENDING_KINDS}
    models = [str(m) for m in (overrides.models or s["models"])]
    tasks = [str(t) for t in (overrides.tasks or s["tasks"]) if str(t) not in pending["tasks"]]
    if not tasks:
        raise UserError(f"{where}: every chosen task is pending ({', '.join(overrides.tasks or [])}); "
                        f"runnable tasks: {', '.join(map(str, s['tasks']))}")
    seeds = overrides.seeds if overrides.seeds is not None else s["seeds"]
    if any(not isinstance(x, int) or isinstance(x, bool) for x in seeds):
        raise UserError(f"{where}: seeds must be integers, got {shorten(seeds)}")
    if not seeds:
        raise UserError(f"{where}: no seeds to run (the suite expands to zero cells)")
    for seed in seeds:
        check_range(seed, RANGES["seeds"], f"{where}: seed")
    _check_settings(s, where)
    target_metric, target_value = _target(s["target"], where)
    entries = _method_entries(suite)
    if overrides.methods:
        wanted = [m for m in overrides.methods if m not in pending["methods"]]
        if not wanted:
            raise UserError(f"{where}: every chosen method is pending ({', '.join(overrides.methods)}); "
                            f"runnable methods: {', '.join(entries)}")
        overrides = dataclasses.replace(overrides, methods=wanted)
        missing = [m for m in overrides.methods if m not in entries]
        if missing:
            raise UserError(f"method(s) {', '.join(missing)} not in suite '{suite.name}'; its methods: {', '.join(entries)}")
        entries = {k: v for k, v in entries.items() if k in overrides.methods}
    cells = []
    for label, entry in entries.items():
        method = str(entry.pop("method", label))
        if method not in method_names():
            raise UserError(f"{where}: unknown method '{method}' (label '{label}'); valid methods: {', '.join(method_names())}")
        harness = _harness_overrides(entry, label, s, where)
        args = make_args(method, entry, where)  # validates names and types now, not in the child
        steps = overrides.steps if overrides.steps is not None else harness.get("steps", s["steps"])
        warmup = s["warmup_steps"]
        if overrides.steps is not None:  # a quick `--steps N` check times what it can: warm-up at most N-1
            warmup = min(warmup, steps - 1)
        if warmup >= steps:  # no step would be timed: a step time of nothing
            raise UserError(f"{where}: warmup_steps ({s['warmup_steps']}) must be below the steps of method "
                            f"'{label}' ({steps}); valid: 0 to {steps - 1}")
        for task_name in tasks:
            task = get_task(task_name)
            length = task.sequence_length
            if length is not None and length > s["max_length"]:
                # Truncating would run a shorter sequence than the task's name states.
                raise UserError(f"{where}: task '{task_name}' needs max_length >= {length}, got {s['max_length']}")
            sizes = {**task.default_sizes, **s["split_sizes"], **(overrides.split_sizes or {})}
            for model in models:
                for seed in seeds:
                    cells.append(Cell(
                        suite=s["name"], model=model, task=task_name, label=label, method=method,
                        args=dataclasses.asdict(args), seed=seed, steps=steps,
                        batch_size=harness.get("batch_size", s["batch_size"]), dtype=harness.get("dtype", s["dtype"]),
                        device=s["device"], data_seed=seed if s["data_seed"] == "seed" else s["data_seed"], split_sizes=sizes,
                        max_length=s["max_length"], eval_batch_size=s["eval_batch_size"],
                        timeout_s=float(s["timeout_s"]), spike_factor=float(s["spike_factor"]),
                        warmup_steps=warmup, eval_every=harness.get("eval_every", s["eval_every"]),
                        select_on=s["select_on"],
                        target_metric=target_metric,
                        target_value=target_value, divergence_policy=s["divergence_policy"],
                        rebound_delta=float(s["rebound_delta"]), monitor=harness.get("monitor", s["monitor"]),
                        gpus=harness.get("gpus", s["gpus"]),
                    ))
    if not cells:
        raise UserError(f"{where}: the suite expands to zero cells")
    ids = [c.cell_id for c in cells]
    for cell in cells:  # every part of the id is a safe name, and the file name fits the file system
        check_file_stem(cell.cell_id, ".json", f"{where}: cell id (model--task--label--seed) of model {shorten(cell.model)}")
    if len(set(ids)) != len(ids):
        raise UserError(f"{where}: two cells share an id (the same model name twice?): {sorted(i for i in ids if ids.count(i) > 1)[0]}")
    return cells
