"""The ``zobench`` command: run, list, show, report, compare, asv-record, nightly, inspect.
Parses arguments and calls functions.

Bad input (UserError) prints one line and exits 2 before anything is written; a results
write that fails (full disk, read-only) prints one line and exits 3; Ctrl-C exits 130 and
SIGTERM 143, both after stopping the running cell (the README's table of exit codes).
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from zobench.api import UserError

# typer vendors its own click: its exception classes are reached through a public one
_UsageError = typer.BadParameter.__mro__[1]
_ClickException = typer.BadParameter.__mro__[2]


class _OneLineUsageError(_ClickException):
    exit_code = 2

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        typer.echo(f"error: {self.message}", err=True)


class _Commands(TyperGroup):
    """Usage errors (a bad option value, an unknown option) are bad input too: one line, exit 2,
    instead of click's usage block."""

    def invoke(self, ctx):  # noqa: ANN001 - a click Context
        try:
            return super().invoke(ctx)
        except _UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            raise _OneLineUsageError(f"{where}: {' '.join(exc.format_message().split())} (see --help)") from None


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_Commands, rich_markup_mode=None,
                  help="Measure what memory-efficient LLM fine-tuning really costs.")

DEFAULT_SUITE = "quickstart"
ResultsDir = typer.Option(Path("results"), "--results-dir", help="where records live (records go to <dir>/runs/<suite>/)")


def _fail(exc: Exception) -> None:
    """One line on stderr: 2 for bad input, WRITE_ERROR_EXIT when results cannot be written."""
    from zobench.results.store import WRITE_ERROR_EXIT, WriteError

    message = " ".join(str(exc).split())  # one line, whatever the message held
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(WRITE_ERROR_EXIT if isinstance(exc, WriteError) else 2)


def _interrupted(exc: KeyboardInterrupt) -> None:
    from zobench.run.signals import exit_code

    typer.echo("interrupted: outstanding cells cancelled, finished cells are saved; run the same command again "
               "to resume", err=True)
    raise typer.Exit(exit_code(exc))


def _into(path: Path, default_name: str) -> Path:
    """An output option: a file, or a folder to write ``default_name`` into."""
    from zobench.paths import checked_child

    return checked_child(path, default_name) if path.is_dir() else path


def _split(values: Optional[list[str]]) -> Optional[list[str]]:
    """Accept both `--tasks a --tasks b` and `--tasks a,b`."""
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _seeds(values: Optional[list[str]]) -> Optional[list[int]]:
    items = _split(values)
    if items is None:
        return None
    try:
        return [int(v) for v in items]
    except ValueError:
        raise UserError(f"--seeds takes integers, got {', '.join(items)}") from None


def _split_sizes(values: Optional[list[str]]) -> Optional[dict[str, int]]:
    """``train=32,dev=8`` → {"train": 32, "dev": 8}."""
    items = _split(values)
    if items is None:
        return None
    sizes = {}
    for item in items:
        name, _, size = item.partition("=")
        if name not in ("train", "dev", "test") or not size.isdigit():
            raise UserError(f"--split-sizes takes train=N, dev=N, test=N; got {item!r}")
        sizes[name] = int(size)
    return sizes


def _load(results_dir: Path, suite: Optional[str]):
    from zobench.results.store import load_results

    df = load_results(results_dir)
    if suite is not None:
        df = df[df.suite == suite]
    if df.empty:
        raise UserError(f"no records under '{results_dir}'" + (f" for suite '{suite}'" if suite else "")
                        + "; run `zobench run` first or pass --results-dir")
    return df


@app.command()
def run(
    suite: str = typer.Option(DEFAULT_SUITE, "--suite", help="a built-in suite name or a path to a suite YAML"),
    methods: Optional[list[str]] = typer.Option(None, "--methods", help="only these method labels of the suite"),
    tasks: Optional[list[str]] = typer.Option(None, "--tasks", help="replace the suite's tasks"),
    models: Optional[list[str]] = typer.Option(None, "--models", help="replace the suite's models"),
    seeds: Optional[list[str]] = typer.Option(None, "--seeds", help="replace the suite's seeds"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="replace every method's step count"),
    split_sizes: Optional[list[str]] = typer.Option(None, "--split-sizes",
                                                    help="override split sizes, e.g. train=32,dev=8,test=8"),
    results_dir: Path = ResultsDir,
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="benchmark data (default: $ZOBENCH_DATA_DIR, else the HF hub)"),
    force: bool = typer.Option(False, "--force", help="rerun cells that already have an ok record"),
    executor: Optional[str] = typer.Option(None, "--executor", help="local (default), ray or slurm; over the suite's executor: section"),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="local: GPU indices to use, e.g. 0,1,2,3 (default: all visible)"),
    parallel: Optional[int] = typer.Option(None, "--parallel", min=1, help="local: CPU cells at once (default 1; recorded)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="ray: the cluster to join (default: start a local Ray)"),
    executor_option: Optional[list[str]] = typer.Option(None, "--executor-option", help="KEY=VALUE for the chosen executor, e.g. partition=gpu"),
    detach: bool = typer.Option(False, "--detach", help="slurm: return once every job is submitted (see zobench status)"),
) -> None:
    """Run a suite: every cell in its own process; records land in RESULTS_DIR."""
    from zobench.run.executors import executor_spec, prepare
    from zobench.paths import checked_child
    from zobench.results.report import markdown_report
    from zobench.run.runner import preflight, run_cells
    from zobench.run.signals import terminate_as_interrupt
    from zobench.results.store import WriteError, atomic_write_text, check_writable, is_done
    from zobench.run.suite import Overrides, expand, load_suite, pending_for
    from zobench.tasks._data import resolve_data_dir

    try:
        spec = load_suite(suite)
        overrides = Overrides(methods=_split(methods), tasks=_split(tasks), models=_split(models),
                              seeds=_seeds(seeds), steps=steps, split_sizes=_split_sizes(split_sizes))
        cells = expand(spec, overrides)
        data_path = resolve_data_dir(data_dir)
        chosen = executor_spec(spec.settings["executor"], executor,
                               {"gpus": gpus, "parallel": parallel, "address": ray_address,
                                **_key_values(executor_option, "--executor-option")}, f"suite {spec.source}")
        if detach and chosen.name != "slurm":
            raise UserError("--detach needs --executor slurm (local and ray records come back to this driver)")
        preflight(cells, data_path)  # devices, models, builds, data: a cell's own faults are named first
        engine, progress = prepare(chosen, cells, results_dir)
        check_writable(results_dir)  # last: its probe creates the results dir
    except UserError as exc:
        _fail(exc)
    for entry in pending_for(spec, overrides):  # listed by the suite, not runnable yet: say so, never drop silently
        typer.echo(entry.message(spec.source), err=True)
    typer.echo(f"suite {spec.name}: {len(cells)} cells → {results_dir}/runs/{spec.name}/ ({chosen.name})", err=True)
    try:
        with terminate_as_interrupt():
            records = run_cells(cells, results_dir, data_path, force=force, progress=progress, executor=engine,
                                detach=detach)
        if detach:
            typer.echo(f"submitted; follow with `zobench status --suite {spec.name} --results-dir {results_dir}`",
                       err=True)
            return
        if not records and not any(is_done(results_dir, cell) for cell in cells):
            typer.echo(f"no records of suite {spec.name} yet: its cells are running elsewhere", err=True)
            return
        df = _load(results_dir, spec.name)
        report = markdown_report(df)
        atomic_write_text(checked_child(results_dir / "reports", f"{spec.name}.md"), report)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except (UserError, WriteError) as exc:
        _fail(exc)
    typer.echo(report)
    failed = [r["cell_id"] for r in records if r["status"] in ("error", "timeout")]
    if failed:
        typer.echo(f"{len(failed)} cell(s) failed: {', '.join(failed)} (see their records)", err=True)
        raise typer.Exit(1)


def _key_values(items: Optional[list[str]], flag: str) -> dict:
    import yaml

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} takes KEY=VALUE, got '{item}'")
        out[key.strip()] = yaml.safe_load(value)
    return out


@app.command()
def status(
    suite: Optional[str] = typer.Option(None, "--suite", help="only this suite (a name)"),
    results_dir: Path = ResultsDir,
) -> None:
    """Each cell's state: pending, running, done (with its status) or failed, with job ids."""
    from zobench.run.executors.status import cell_states, suites_in

    try:
        names = [suite] if suite else suites_in(results_dir)
        if not names:
            raise UserError(f"nothing under '{results_dir}'; run `zobench run` first or pass --results-dir")
        for name in names:
            rows = cell_states(results_dir, name)
            counts = {state: sum(r["state"] == state for r in rows) for state in ("pending", "running", "done", "failed")}
            typer.echo(f"suite {name}: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
            for r in rows:
                status_text = f" ({r['status']})" if r["status"] and r["state"] in ("done", "failed") else ""
                job = f"  {r['executor']} {r['job_id']}" if r["job_id"] else f"  {r['executor']}"
                typer.echo(f"  {r['state']:8} {r['cell_id']}{status_text}{job}")
    except UserError as exc:
        _fail(exc)


@app.command()
def cancel(
    suite: str = typer.Option(..., "--suite", help="the suite whose queued and running Slurm jobs to cancel"),
    results_dir: Path = ResultsDir,
) -> None:
    """Cancel a suite's Slurm jobs (scancel) and free their cells; Ray and local runs stop with Ctrl-C."""
    from zobench.run.executors.status import cancel_suite

    try:
        cancelled, others = cancel_suite(results_dir, suite)
    except UserError as exc:
        _fail(exc)
    typer.echo(f"cancelled {len(cancelled)} slurm job(s)" + (f": {', '.join(cancelled)}" if cancelled else ""))
    for info in others:
        typer.echo(f"  {info['cell_id']}: held by {info.get('executor')} (host {info.get('host')}, pid {info.get('pid')}); "
                   "stop that run with Ctrl-C", err=True)


class Listable(str, Enum):
    suites = "suites"
    methods = "methods"
    tasks = "tasks"
    models = "models"


@app.command("list")
def list_(what: Listable = typer.Argument(..., help="suites, methods, tasks or models")) -> None:
    """List what zobench can run."""
    if what is Listable.suites:
        from zobench.run.suite import load_suite, suite_names

        for name in suite_names():
            typer.echo(f"{name:24} {load_suite(name).settings['description']}")
    elif what is Listable.methods:
        from zobench.registry import method_module, method_names

        for name in method_names():
            doc = (method_module(name).__doc__ or "").strip().splitlines()[0]
            typer.echo(f"{name:24} {doc}")
    elif what is Listable.tasks:
        from zobench.tasks import get_task, task_names

        for name in task_names():
            typer.echo(f"{name:24} {get_task(name).description}")
    else:
        from zobench.models import model_catalogue

        for name, description in model_catalogue():
            typer.echo(f"{name:24} {description}")


@app.command()
def show(results_dir: Path = ResultsDir, suite: Optional[str] = typer.Option(None, "--suite")) -> None:
    """A table of the stored records."""
    try:
        df = _load(results_dir, suite)
    except UserError as exc:
        _fail(exc)
    columns = ["suite", "cell_id", "status", "step0_accuracy", "accuracy", "peak_mem_bytes", "step_time_s",
               "forwards_per_step", "divergence_events"]
    typer.echo(df[columns].to_string(index=False))


@app.command()
def report(
    results_dir: Path = ResultsDir,
    suite: Optional[str] = typer.Option(None, "--suite", help="only this suite"),
    out: Optional[Path] = typer.Option(None, "--out", help="also write the Markdown here"),
    html: Optional[Path] = typer.Option(None, "--html", help="also write a self-contained HTML page with figures here"),
) -> None:
    """The comparison table of the stored records (ratios to the inference floor); --html adds figures."""
    from zobench.results.report import markdown_report
    from zobench.results.store import WriteError, atomic_write_text

    try:
        df = _load(results_dir, suite)
        text = markdown_report(df)
        if html is not None:
            from zobench.results.html_report import html_report

            atomic_write_text(_into(html, "report.html"), html_report(df, f"zobench report: {suite or results_dir}"))
        if out is not None:
            atomic_write_text(_into(out, "report.md"), text)
    except (UserError, WriteError) as exc:
        _fail(exc)
    typer.echo(text)


@app.command()
def compare(
    base: Path = typer.Argument(..., help="BASE records: a results dir, a suite folder or one record file"),
    head: Path = typer.Argument(..., help="HEAD records, the same kinds"),
    suite: Optional[str] = typer.Option(None, "--suite", help="only this suite (a name or a YAML path); its thresholds apply"),
    threshold: Optional[list[str]] = typer.Option(None, "--threshold", help="KEY=NUMBER over the suite's, e.g. step_time=0.2"),
    out: Optional[Path] = typer.Option(None, "--out", help="also write the Markdown here"),
    allow_missing: bool = typer.Option(False, "--allow-missing",
                                       help="a cell BASE has and HEAD lacks (or has unreadable) is not a regression"),
) -> None:
    """The regression gate: exit 1 when HEAD regresses on BASE (or lacks its cells), 0 otherwise, 2 on bad input
    or when no cell is on both sides."""
    from zobench.results.compare import gate, parse_overrides, render
    from zobench.results.store import WriteError, atomic_write_text

    try:
        result = gate(base, head, suite, parse_overrides(threshold), allow_missing=allow_missing)
        text = render(result)
        if out is not None:
            atomic_write_text(_into(out, "compare.md"), text)
    except (UserError, WriteError) as exc:
        _fail(exc)
    typer.echo(text)
    if len(result.regressions):
        raise typer.Exit(1)


@app.command("asv-record")
def asv_record(
    records: Path = typer.Argument(..., help="the commit's records: a results dir or a suite folder"),
    commit: str = typer.Option(..., "--commit", help="the commit hash they belong to (must be in asv's repo)"),
    suite: Optional[str] = typer.Option(None, "--suite", help="only this suite's records"),
    asv_config: Path = typer.Option(Path("asv.conf.json"), "--asv-config"),
    machine: Optional[str] = typer.Option(None, "--machine", help="asv machine name (default: the host name)"),
    publish: bool = typer.Option(True, "--publish/--no-publish", help="then run `asv publish`"),
) -> None:
    """Save one commit's records as asv results (benchmarks/records.py) and publish the history."""
    from zobench.results import asv_flow

    from zobench.paths import check_sha

    try:
        check_sha(commit, "--commit")
        asv_flow.check_commit(asv_config, commit)
        if not records.exists():
            raise UserError(f"records '{records}' do not exist; pass a results dir or a suite folder")
        asv_flow.record(records, commit, asv_config, machine, suite)
        if publish:
            typer.echo(f"published {asv_flow.publish(asv_config)}/index.html")
    except UserError as exc:
        _fail(exc)
    except asv_flow.AsvError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)


@app.command()
def nightly(
    suite: str = typer.Option("nightly", "--suite", help="a built-in suite name or a suite YAML (smoke for a CPU check)"),
    store: Path = typer.Option(Path("nightly"), "--store", help="persistent folder: records per commit, BASELINE, asv history"),
    out: Path = typer.Option(Path("nightly-report"), "--out", help="where compare.md, report.md and report.html go"),
    commit: Optional[str] = typer.Option(None, "--commit", help="default: git HEAD of the working directory"),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="compare with these records instead of the store's BASELINE"),
    asv_config: Path = typer.Option(Path("asv.conf.json"), "--asv-config"),
    no_asv: bool = typer.Option(False, "--no-asv", help="skip recording into asv and publishing"),
    machine: Optional[str] = typer.Option(None, "--machine", help="asv machine name (default: the host name)"),
    accept: bool = typer.Option(False, "--accept", help="make this run the baseline even if the gate fails"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
    executor: Optional[str] = typer.Option(None, "--executor", help="local, ray or slurm (default: the suite's, else local)"),
) -> None:
    """The nightly job: run, store, compare with the baseline, asv record + publish, reports. Exit 1 on a regression."""
    from zobench.results import asv_flow
    from zobench.results.nightly import NightlyArgs
    from zobench.results.nightly import nightly as run_nightly
    from zobench.run.signals import terminate_as_interrupt
    from zobench.results.store import WriteError

    args = NightlyArgs(suite=suite, store=store, out=out, commit=commit, baseline=baseline,
                       asv_config=None if no_asv else asv_config, machine=machine, accept=accept, data_dir=data_dir,
                       executor=executor)
    try:
        with terminate_as_interrupt():
            code = run_nightly(args, say=lambda text: typer.echo(text, err=True))
    except (UserError, WriteError) as exc:
        _fail(exc)
    except asv_flow.AsvError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    raise typer.Exit(code)


@app.command("inspect")
def inspect_(
    method: str = typer.Option(..., "--method", help="a method name (zobench list methods)"),
    model: str = typer.Option(..., "--model", help="a model name (zobench list models)"),
    rank: Optional[int] = typer.Option(None, "--rank", help="the method's rank (TT rank for loretta-rep)"),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE hyperparameter, repeatable"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of text"),
) -> None:
    """Trainable parameters, adapter placement and TT shapes, built on the meta device (no memory)."""
    import json

    import yaml

    from zobench.inspection import format_summary, inspect_method
    from zobench.registry import method_module

    try:
        raw: dict = {}
        for item in settings or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UserError(f"--set takes KEY=VALUE, got '{item}'")
            raw[key.strip()] = yaml.safe_load(value)
        if rank is not None:
            fields = method_module(method).Args.__dataclass_fields__
            key = "rank" if "rank" in fields else "tt_rank" if "tt_rank" in fields else None
            if key is None:
                raise UserError(f"method '{method}' has no rank; its hyperparameters: {', '.join(fields)}")
            raw[key] = rank
        summary = inspect_method(method, model, raw)
    except UserError as exc:
        _fail(exc)
    typer.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


def main() -> None:  # pragma: no cover - `python -m zobench.cli`
    sys.exit(app())


if __name__ == "__main__":
    main()
