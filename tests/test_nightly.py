"""`zobench nightly` end to end on the tiny model: records per commit, the gate against the
baseline, asv results for two commits and the published history, and the reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO
from zobench import load_results
from zobench.cli import app
from zobench.results.store import read_record, write_record

# The smoke suite cut to three labels (the flow needs no more), with a step-time threshold that a
# shared 2-core CI machine cannot trip: this test is about the flow; test_compare.py tests the gate's decisions.
LABELS = ("floor", "mezo", "ft")
_smoke = yaml.safe_load((REPO / "suites" / "smoke.yaml").read_text())
SUITE = yaml.safe_dump({**_smoke, "methods": {k: _smoke["methods"][k] for k in LABELS},
                        "thresholds": {"step_time": 100.0}})
TRACKS = {"track_peak_memory": "peak_mem_bytes", "track_step_time": "step_time_s",
          "track_error_rate": "accuracy", "track_divergence_events": "divergence_events"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path):
    """A git repo laid out like zobench's root for asv (its config and benchmarks), one commit on main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / "asv.conf.json", repo)
    shutil.copytree(REPO / "benchmarks", repo / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    (tmp_path / "suite.yaml").write_text(SUITE)
    return repo


def nightly(repo: Path, *args: str) -> subprocess.CompletedProcess:
    tmp = repo.parent
    # HOME: asv keeps its machine file in ~/.asv-machine.json; keep the test's out of the real one.
    env = {**os.environ, "HOME": str(tmp / "home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("ZOBENCH_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "zobench.cli", "nightly", "--suite", str(tmp / "suite.yaml"),
                           "--store", str(tmp / "store"), "--out", str(tmp / "out"), "--machine", "ci-cpu", *args],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.integration
def test_two_nightly_runs_build_the_asv_history_and_move_the_baseline(project):
    """Two commits: each run stores its records, passes the gate, and becomes the baseline;
    asv's published site has one point per commit for every tracked metric, equal to the records."""
    store, out = project.parent / "store", project.parent / "out"
    first = nightly(project)
    assert first.returncode == 0, first.stderr[-3000:]
    sha1 = git(project, "rev-parse", "HEAD")
    assert (store / "BASELINE").read_text().strip() == sha1
    assert "no baseline yet" in first.stderr and not (out / "compare.md").exists()

    git(project, "commit", "-q", "--allow-empty", "-m", "second")
    sha2 = git(project, "rev-parse", "HEAD")
    second = nightly(project)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (store / "BASELINE").read_text().strip() == sha2
    assert "No regression." in (out / "compare.md").read_text()
    assert (out / "report.md").is_file() and "<img" in (out / "report.html").read_text()

    site = store / "asv" / "html"
    assert (site / "index.html").is_file()
    index = json.loads((site / "index.json").read_text())
    revisions = {sha: int(rev) for rev, sha in index["revision_to_hash"].items()}
    assert set(revisions) == {sha1, sha2}
    [graphs] = list((site / "graphs" / "branch-main" / "machine-ci-cpu").iterdir())
    for sha in (sha1, sha2):
        df = load_results(store / sha / "runs" / "smoke").sort_values("label")
        for track, column in TRACKS.items():
            points = dict((rev, values) for rev, values in json.loads((graphs / f"records.{track}.json").read_text()))
            expected = [1 - v if column == "accuracy" else v for v in df[column].astype(float)]
            assert points[revisions[sha]] == pytest.approx(expected), (track, sha)


@pytest.mark.integration
def test_a_regression_fails_the_night_and_keeps_the_baseline(project, smoke_records, tmp_path):
    """Against a baseline where mezo used half the memory, the run exits 1 and BASELINE stays put."""
    baseline = tmp_path / "baseline"
    shutil.copytree(smoke_records, baseline)
    for path in (baseline / "runs" / "smoke").glob("*.json"):  # the suite's labels only: no cell is missing
        if read_record(path)["cell"]["label"] not in LABELS:
            path.unlink()
    path = baseline / "runs" / "smoke" / "random-tiny-llama--synthetic--mezo--s0.json"
    record = read_record(path)
    record["metrics"]["peak_mem_bytes"] //= 2
    write_record(baseline, record)
    store = project.parent / "store"
    store.mkdir()
    (store / "BASELINE").write_text("earlier\n")
    run = nightly(project, "--baseline", str(baseline), "--no-asv")
    assert run.returncode == 1, run.stderr[-3000:]
    compared = (project.parent / "out" / "compare.md").read_text()
    [row] = [line for line in compared.splitlines() if "--mezo " in line and "peak memory" in line]
    assert "REGRESSION" in row
    assert (store / "BASELINE").read_text() == "earlier\n"
    assert not (store / "asv").exists()


@pytest.mark.parametrize("args, needle", [
    (["--suite", "nope"], "valid suites"),
    (["--baseline", "/does/not/exist"], "--baseline"),
    (["--asv-config", "missing.json"], "asv config"),
    (["--data-dir", "/does/not/exist"], "ZOBENCH_DATA_DIR"),
    (["--commit", "deadbeef"], "not in asv's repo"),
])
def test_bad_input_exits_2_and_writes_nothing(project, args, needle, monkeypatch):
    """Every check runs before the first cell: one line, exit 2, no store and no reports (in-process)."""
    tmp = project.parent
    monkeypatch.chdir(project)
    monkeypatch.setenv("HOME", str(tmp / "home"))
    monkeypatch.delenv("ZOBENCH_DATA_DIR", raising=False)
    run = CliRunner().invoke(app, ["nightly", "--suite", str(tmp / "suite.yaml"), "--store", str(tmp / "store"),
                                   "--out", str(tmp / "out"), "--machine", "ci-cpu", *args])
    assert run.exit_code == 2, run.stderr
    assert needle in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (project.parent / "store").exists() and not (project.parent / "out").exists()
