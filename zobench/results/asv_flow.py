"""Records of one commit → asv's results, and asv's HTML history.

asv does not measure here: ``benchmarks/records.py`` holds ``track_*`` benchmarks that read
the commit's zobench records. asv runs them in this interpreter (``--python=same``, the
``existing`` environment of asv.conf.json) with the commit hash set by hand, the route asv
offers for results it cannot build itself. Then ``asv publish`` draws the history.
Usage: ``record(Path("results"), sha, Path("asv.conf.json")); publish(Path("asv.conf.json"))``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from zobench.api import UserError
from zobench.results.store import atomic_write_text


class AsvError(RuntimeError):
    """asv itself failed (not the user's input): the message ends with asv's own output."""


def _asv(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    cmd = [sys.executable, "-m", "asv", "--config", str(config), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=1800)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise AsvError(f"`asv {' '.join(args)}` exited {proc.returncode}:\n{tail}")
    return proc.stdout


def load_config(config: Path) -> dict:
    """asv.conf.json as asv reads it (JSON with // comments)."""
    from asv.util import load_json

    if not config.is_file():
        raise UserError(f"asv config '{config}' does not exist; run from the repo root or pass --asv-config")
    return load_json(str(config), js_comments=True)


def check_commit(config: Path, commit: str) -> None:
    """asv files results under a commit of its repo; refuse one it cannot find, before any work."""
    repo = (config.resolve().parent / load_config(config).get("repo", ".")).resolve()
    out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=repo,
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise UserError(f"commit '{commit}' is not in asv's repo {repo} (asv.conf.json 'repo'); pass a commit of its history")


def store_config(config: Path, store: Path) -> Path:
    """A copy of ``config`` whose results and HTML live in ``store``, with absolute repo paths.

    A CI checkout is wiped between runs; the store (a runner's persistent folder) is not,
    so asv's history must live there.
    """
    conf = load_config(config)
    root = config.resolve().parent
    conf.update(repo=str((root / conf.get("repo", ".")).resolve()),
                benchmark_dir=str((root / conf.get("benchmark_dir", "benchmarks")).resolve()),
                results_dir=str((store / "asv" / "results").resolve()),
                html_dir=str((store / "asv" / "html").resolve()))
    path = store / "asv" / "asv.conf.json"
    atomic_write_text(path, json.dumps(conf, indent=1) + "\n")
    return path


def record(records: Path, commit: str, config: Path, machine: str | None = None, suite: str | None = None) -> None:
    """Run the track_* benchmarks over ``records`` and save them in asv's results as ``commit``."""
    machine = machine or platform.node() or "zobench"
    env = {"ZOBENCH_ASV_RECORDS": str(Path(records).resolve()), "ZOBENCH_ASV_SUITE": suite or ""}
    _asv(config, "machine", "--yes", "--machine", machine)  # asv run refuses a machine it has no file for
    _asv(config, "run", "--python=same", f"--set-commit-hash={commit}", "--machine", machine,
         "--bench", r"^records\.", env=env)


def publish(config: Path) -> Path:
    """``asv publish``: the static HTML history; returns its folder."""
    _asv(config, "publish")
    conf = load_config(config)
    return (config.resolve().parent / conf.get("html_dir", "html")).resolve()
