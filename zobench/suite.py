"""Suites: YAML specs of models × tasks × methods (with hyperparameters) × seeds, expanded into cells.

Everything is validated before the first cell runs, so bad input never writes a record.
Usage: ``cells = expand(load_suite("quickstart"), Overrides(steps=5))``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from pathlib import Path
from typing import Any

import yaml

from zobench.api import Cell, UserError
from zobench.compare import parse_thresholds
from zobench.models import DTYPES
from zobench.registry import make_args, method_names
from zobench.tasks import get_task

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
    "data_seed": (int, 0),
    "split_sizes": (dict, {}),
    "max_length": (int, 256),
    "eval_batch_size": (int, 64),
    "timeout_s": ((int, float), 3600),
    "spike_factor": ((int, float), 3.0),
    "rebound_delta": ((int, float), 0.3),
    "divergence_policy": (str, "continue"),
    "warmup_steps": (int, 1),
    "eval_every": (int, 0),
    "target": (dict, {}),
    "monitor": (bool, True),
    "thresholds": (dict, {}),  # the regression gate's, over zobench.compare.DEFAULT_THRESHOLDS
}
METHOD_OVERRIDES = {"steps": int, "batch_size": int, "monitor": bool, "dtype": str}
POLICIES = ("continue", "stop")
TARGET_METRICS = ("dev_accuracy", "train_loss")
DEVICES = ("auto", "cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    source: str
    settings: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Command-line changes to a suite: ``methods`` filters labels; the rest replace."""

    methods: list[str] | None = None
    tasks: list[str] | None = None
    models: list[str] | None = None
    seeds: list[int] | None = None
    steps: int | None = None


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
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"suite {source}: malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise UserError(f"suite {source}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise UserError(f"suite {source}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(SETTINGS)}")
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
            raise UserError(f"suite {source}: setting '{key}' must be {names}, got {type(value).__name__} {value!r}")
        settings[key] = value
    parse_thresholds(settings["thresholds"], f"suite {source}")
    return Suite(settings["name"], source, settings)


def _method_entries(suite: Suite) -> dict[str, dict[str, Any]]:
    entries = {}
    for label, entry in suite.settings["methods"].items():
        entry = {} if entry is None else entry
        if not isinstance(entry, dict):
            raise UserError(f"suite {suite.source}: method '{label}' must map to hyperparameters, got {entry!r}")
        entries[str(label)] = dict(entry)
    return entries


def _target(target: dict[str, Any], where: str) -> tuple[str | None, float | None]:
    """``target: {metric: dev_accuracy | train_loss, value: x}`` for time- and forwards-to-target."""
    if not target:
        return None, None
    if set(target) != {"metric", "value"} or target["metric"] not in TARGET_METRICS \
            or not isinstance(target["value"], (int, float)) or isinstance(target["value"], bool):
        raise UserError(f"{where}: target must be {{metric: {' | '.join(TARGET_METRICS)}, value: <number>}}, got {target!r}")
    return target["metric"], float(target["value"])


def expand(suite: Suite, overrides: Overrides = Overrides()) -> list[Cell]:
    """The cartesian product of the suite, validated; raises UserError on any bad name or value."""
    s = suite.settings
    where = f"suite {suite.source}"
    models = [str(m) for m in (overrides.models or s["models"])]
    tasks = [str(t) for t in (overrides.tasks or s["tasks"])]
    seeds = overrides.seeds if overrides.seeds is not None else s["seeds"]
    if any(not isinstance(x, int) or isinstance(x, bool) for x in seeds):
        raise UserError(f"{where}: seeds must be integers, got {seeds!r}")
    if s["dtype"] not in DTYPES:
        raise UserError(f"{where}: unknown dtype '{s['dtype']}'; valid: {', '.join(DTYPES)}")
    if s["device"] not in DEVICES and not s["device"].startswith("cuda:"):
        raise UserError(f"{where}: unknown device '{s['device']}'; valid: {', '.join(DEVICES)}, cuda:N")
    if s["divergence_policy"] not in POLICIES:
        raise UserError(f"{where}: unknown divergence_policy '{s['divergence_policy']}'; valid: {', '.join(POLICIES)}")
    target_metric, target_value = _target(s["target"], where)
    entries = _method_entries(suite)
    if overrides.methods:
        missing = [m for m in overrides.methods if m not in entries]
        if missing:
            raise UserError(f"method(s) {', '.join(missing)} not in suite '{suite.name}'; its methods: {', '.join(entries)}")
        entries = {k: v for k, v in entries.items() if k in overrides.methods}
    cells = []
    for label, entry in entries.items():
        method = str(entry.pop("method", label))
        if method not in method_names():
            raise UserError(f"{where}: unknown method '{method}' (label '{label}'); valid methods: {', '.join(method_names())}")
        harness = {}
        for key, kind in METHOD_OVERRIDES.items():
            if key in entry:
                value = entry.pop(key)
                if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                    raise UserError(f"{where}: '{key}' of method '{label}' must be {kind.__name__}, got {value!r}")
                harness[key] = value
        if harness.get("dtype", s["dtype"]) not in DTYPES:
            raise UserError(f"{where}: unknown dtype '{harness['dtype']}' for method '{label}'; valid: {', '.join(DTYPES)}")
        args = make_args(method, entry, where)  # validates names and types now, not in the child
        steps = overrides.steps if overrides.steps is not None else harness.get("steps", s["steps"])
        for task_name in tasks:
            task = get_task(task_name)
            length = getattr(task, "sequence_length", None)
            if length is not None and length > s["max_length"]:
                # Truncating would run a shorter sequence than the task's name states.
                raise UserError(f"{where}: task '{task_name}' needs max_length >= {length}, got {s['max_length']}")
            sizes = {**task.default_sizes, **s["split_sizes"]}
            for model in models:
                for seed in seeds:
                    cells.append(Cell(
                        suite=s["name"], model=model, task=task_name, label=label, method=method,
                        args=dataclasses.asdict(args), seed=seed, steps=steps,
                        batch_size=harness.get("batch_size", s["batch_size"]), dtype=harness.get("dtype", s["dtype"]),
                        device=s["device"], data_seed=s["data_seed"], split_sizes=sizes,
                        max_length=s["max_length"], eval_batch_size=s["eval_batch_size"],
                        timeout_s=float(s["timeout_s"]), spike_factor=float(s["spike_factor"]),
                        warmup_steps=s["warmup_steps"], eval_every=s["eval_every"], target_metric=target_metric,
                        target_value=target_value, divergence_policy=s["divergence_policy"],
                        rebound_delta=float(s["rebound_delta"]), monitor=harness.get("monitor", s["monitor"]),
                    ))
    ids = [c.cell_id for c in cells]
    if len(set(ids)) != len(ids):
        raise UserError(f"{where}: two cells share an id (the same model name twice?): {sorted(i for i in ids if ids.count(i) > 1)[0]}")
    return cells
