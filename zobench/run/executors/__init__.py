"""Executors: where a suite's cells run (``local``, ``ray``, ``slurm``), one seam (zobench.api.Executor).

A suite may name its engine and each engine's options; the command line overrides them::

    executor:
      name: local                                  # the default engine for this suite
      local: {gpus: "0,1", parallel: 1}
      ray: {address: "ray://head:10001", cpus: 4, memory_gb: 32}
      slurm: {partition: gpu, account: lab, qos: normal, cpus: 8, mem_gb: 64}

Usage: ``spec = executor_spec(suite.settings["executor"], cli_name, cli_options, where)``;
``executor, progress = prepare(spec, cells, results_dir)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from zobench.api import Executor, UserError

NUMBER = (int, float)
OPTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "local": {"gpus": (str, list, int), "parallel": int},
    "ray": {"address": str, "cpus": NUMBER, "memory_gb": NUMBER},
    "slurm": {"partition": str, "account": str, "qos": str, "cpus": int, "mem_gb": NUMBER},
}
NAMES = tuple(OPTIONS)


@dataclasses.dataclass(frozen=True)
class ExecutorSpec:
    name: str
    options: dict[str, Any]


def _check(name: str, options: Any, where: str) -> dict[str, Any]:
    if not isinstance(options, dict):
        raise UserError(f"{where}: executor options for {name} must be a mapping, got {options!r}")
    valid = OPTIONS[name]
    for key, value in options.items():
        if key not in valid:
            raise UserError(f"{where}: unknown {name} executor option '{key}'; valid: {', '.join(valid)}")
        if not isinstance(value, valid[key]) or isinstance(value, bool):
            raise UserError(f"{where}: {name} executor option '{key}' has the wrong type: {value!r}")
        if key in ("parallel", "cpus", "memory_gb", "mem_gb") and value <= 0:
            raise UserError(f"{where}: {name} executor option '{key}' must be positive, got {value!r}")
    return dict(options)


def executor_spec(section: dict[str, Any], name: str | None, overrides: dict[str, Any], where: str) -> ExecutorSpec:
    """The engine to use and its options: the suite's ``executor:`` section, then the command line."""
    unknown = sorted(set(section) - {"name", *NAMES})
    if unknown:
        raise UserError(f"{where}: unknown executor setting(s) {', '.join(unknown)}; valid: name, {', '.join(NAMES)}")
    chosen = name or section.get("name", "local")
    if chosen not in NAMES:
        raise UserError(f"{where}: unknown executor '{chosen}'; valid: {', '.join(NAMES)}")
    options = _check(chosen, section.get(chosen, {}), where)
    options.update(_check(chosen, {k: v for k, v in overrides.items() if v is not None}, "command line"))
    return ExecutorSpec(chosen, options)


def prepare(spec: ExecutorSpec, cells: list, results_dir: Path) -> tuple[Executor, Any]:
    """The engine and its progress display; UserError (nothing written) when a cell cannot fit.

    Cells one at a time on this host keep the per-step progress bar (zobench.run.progress);
    anything side by side gets one line per event (executors.progress)."""
    from zobench.run.executors.progress import PoolProgress
    from zobench.run.progress import Progress

    executor = make_executor(spec, results_dir)
    if spec.name != "local":
        return executor, PoolProgress(len(cells))
    from zobench.run.executors.devices import Need, check_fits
    from zobench.run.executors.local import gpus_needed

    check_fits([Need(c.cell_id, gpus_needed(c, executor.gpus)) for c in cells], executor.gpus)
    progress = Progress(len(cells)) if len(executor.gpus) <= 1 and executor.parallel == 1 else PoolProgress(len(cells))
    executor.on_start, executor.on_message = progress.cell_started, progress.handle
    return executor, progress


def make_executor(spec: ExecutorSpec, results_dir: Path) -> Executor:
    """The engine, imported only when chosen (ray and submitit are optional extras)."""
    try:
        if spec.name == "ray":
            from zobench.run.executors.ray import RayExecutor

            return RayExecutor(**spec.options)
        if spec.name == "slurm":
            import submitit  # noqa: F401  (fail here, with the install hint, not at submission)

            from zobench.run.executors.slurm import SlurmExecutor

            return SlurmExecutor(results_dir, **spec.options)
    except ImportError as exc:
        raise UserError(f"--executor {spec.name} needs {exc.name}: pip install 'zobench[{spec.name}]'") from None
    from zobench.run.executors.devices import parse_gpus, visible_gpu_count
    from zobench.run.executors.local import LocalExecutor

    gpus = spec.options.get("gpus")
    text = ",".join(map(str, gpus)) if isinstance(gpus, list) else None if gpus is None else str(gpus)
    return LocalExecutor(gpus=parse_gpus(text, visible_gpu_count()), parallel=spec.options.get("parallel", 1))
