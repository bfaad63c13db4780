"""The nightly job as one command: run the suite for a commit, keep its records, compare them
with the accepted baseline, feed asv and publish, and write the reports.

The store (a folder that outlives CI checkouts) holds::

    <store>/<commit>/runs/<suite>/*.json   the records of each commit (a results dir)
    <store>/BASELINE                       the commit whose records the gate compares with
    <store>/asv/{results,html}/            asv's history and its published site

The baseline moves to this commit only when the gate passes (or with ``accept``), so a
regression keeps failing until it is fixed or deliberately accepted.
Usage: ``code = nightly(NightlyArgs(suite="smoke", store=Path("nightly")), say=print)``.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Callable

from zobench.results import asv_flow
from zobench.api import UserError
from zobench.paths import check_sha, checked_child
from zobench.results.store import atomic_write_text, check_writable, load_results


@dataclasses.dataclass(frozen=True)
class NightlyArgs:
    suite: str = "nightly"
    store: Path = Path("nightly")
    out: Path = Path("nightly-report")
    commit: str | None = None  # default: HEAD of the git repo in the working directory
    baseline: Path | None = None  # default: the store's BASELINE commit
    asv_config: Path | None = Path("asv.conf.json")  # None: skip asv
    machine: str | None = None
    accept: bool = False
    data_dir: Path | None = None
    executor: str | None = None  # local | ray | slurm; default: the suite's executor section, else local


def head_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
    except OSError:
        out = None
    if out is None or out.returncode != 0:
        raise UserError("not inside a git repository: pass --commit SHA (the commit the records belong to)")
    return out.stdout.strip()


def _baseline(args: NightlyArgs, commit: str) -> Path | None:
    if args.baseline is not None:
        if not args.baseline.exists():
            raise UserError(f"--baseline '{args.baseline}' does not exist; pass a results dir of an earlier run")
        return args.baseline
    pointer = args.store / "BASELINE"
    accepted = pointer.read_text().strip() if pointer.is_file() else ""
    if accepted:
        check_sha(accepted, f"{pointer}")  # a pointer edited to ../x must not lead outside the store
    return args.store / accepted if accepted and accepted != commit and (args.store / accepted).is_dir() else None


def nightly(args: NightlyArgs, say: Callable[[str], None]) -> int:
    """Every step; returns the exit code: 1 on a regression or a failed cell, else 0."""
    from zobench.results.compare import gate, render
    from zobench.results.html_report import html_report
    from zobench.results.report import markdown_report
    from zobench.run.executors import executor_spec, prepare
    from zobench.run.runner import preflight, run_cells
    from zobench.run.suite import expand, load_suite
    from zobench.tasks._data import resolve_data_dir

    # Everything the user gave is checked before the first cell runs.
    commit = check_sha(args.commit or head_commit(), "--commit")
    spec = load_suite(args.suite)
    cells = expand(spec)
    data_path = resolve_data_dir(args.data_dir)
    results = checked_child(args.store, commit)
    preflight(cells, data_path)
    baseline = _baseline(args, commit)
    if baseline is not None and load_results(baseline).query("suite == @spec.name").empty:
        raise UserError(f"baseline '{baseline}' has no records of suite '{spec.name}'")
    if args.asv_config is not None:
        asv_flow.check_commit(args.asv_config, commit)
    check_writable(results)  # last: it creates the folder

    chosen = executor_spec(spec.settings["executor"], args.executor, {}, f"suite {spec.source}")
    engine, progress = prepare(chosen, cells, results)
    say(f"[1/5] run suite {spec.name} for {commit[:12]}: {len(cells)} cells → {results}/runs/{spec.name}/ ({chosen.name})")
    records = run_cells(cells, results, data_path, progress=progress, executor=engine)
    failed = [r["cell_id"] for r in records if r["status"] in ("error", "timeout")]

    args.out.mkdir(parents=True, exist_ok=True)
    regressions = 0
    if baseline is None:
        say("[2/5] compare: no baseline yet (first run); this run becomes the baseline if it passes")
    else:
        say(f"[2/5] compare with {baseline}")
        result = gate(baseline, results, args.suite)
        text = render(result)
        atomic_write_text(args.out / "compare.md", text)
        say(text)
        regressions = len(result.regressions)

    if args.asv_config is None:
        say("[3/5] asv: skipped")
    else:
        config = asv_flow.store_config(args.asv_config, args.store)
        asv_flow.record(results, commit, config, args.machine, spec.name)
        site = asv_flow.publish(config)
        say(f"[3/5] asv: recorded {commit[:12]} and published {site}/index.html")

    df = load_results(results / "runs" / spec.name)
    atomic_write_text(args.out / "report.md", markdown_report(df))
    atomic_write_text(args.out / "report.html", html_report(df, f"zobench nightly: {spec.name} at {commit[:12]}"))
    say(f"[4/5] reports: {args.out}/report.md, {args.out}/report.html")

    passed = not regressions and not failed
    if passed or args.accept:
        atomic_write_text(args.store / "BASELINE", commit + "\n")
    verdict = "passed" if passed else f"{regressions} regression(s), {len(failed)} failed cell(s)"
    say(f"[5/5] {verdict}; baseline: {(args.store / 'BASELINE').read_text().strip()[:12] if (args.store / 'BASELINE').is_file() else 'none'}")
    return 0 if passed else 1
