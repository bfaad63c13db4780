"""The zobench command end to end on the tiny random model, and every kind of bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REPO
from zobench.cli import app


def zobench(*args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env_extra or {})}
    env.pop("ZOBENCH_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "zobench.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def cli(*args: str):
    """The command in this process (typer's CliRunner), without $ZOBENCH_DATA_DIR."""
    result = CliRunner(env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "ZOBENCH_DATA_DIR": None}).invoke(
        app, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        f"traceback instead of a clean exit: {result.exception!r}"
    return result


SMOKE_LABELS = ("bszo", "floor", "forward-grad", "ft", "fzoo", "hizoo", "mezo", "mezo-svrg", "sparse-mezo", "subzero",
                "zo-adam", "zo-cons", "zo-momentum", "zo-muon", "zo-sign")


def test_run_show_report_and_resume(smoke_run, tmp_path):
    """A smoke run (the session's, through the real command) writes one ok record per cell and a report;
    a second run skips them all."""
    res = tmp_path / "res"
    shutil.copytree(smoke_run.results, res)  # the second run and show must not touch the shared one
    records = sorted((res / "runs" / "smoke").glob("*.json"))
    assert [p.stem for p in records] == [f"random-tiny-llama--synthetic--{m}--s0" for m in sorted(SMOKE_LABELS)]
    for path in records:
        record = json.loads(path.read_text())
        assert record["status"] == "ok"
        m = record["metrics"]
        assert m["steps_done"] == 8 and m["step_time_s"] > 0 and m["peak_mem_bytes"] > 0
        assert record["data"]["synthetic"] is True and record["data"]["split_sizes"] == {"train": 16, "dev": 8, "test": 8}
        assert record["env"]["versions"]["torch"] and "git_sha" in record["env"] and record["env"]["dtype"] == "fp32"
        assert record["env"]["cpu_model"] and isinstance(record["env"]["cpu_vector_isa"], list)  # CPU timings depend on both
        assert record["method_info"]["variant"]
    assert (res / "reports" / "smoke.md").is_file()
    assert "| mezo | ok 1 |" in smoke_run.stdout and "× floor" in smoke_run.stdout and "SYNTHETIC" in smoke_run.stdout
    assert "train" in smoke_run.stderr and "ms/step" in smoke_run.stderr  # progress with step time

    again = zobench("run", "--suite", "smoke", "--steps", "8", "--results-dir", str(res), "--methods", "mezo", cwd=tmp_path)
    assert again.returncode == 0 and "skipped" in again.stderr

    shown = cli("show", "--results-dir", res)
    assert shown.exit_code == 0 and "random-tiny-llama--synthetic--ft--s0" in shown.stdout


def test_list_names_what_exists():
    """`zobench list` names the installed suites, methods, tasks and models."""
    for what, expected in [("methods", "mezo"), ("tasks", "sst2"), ("suites", "quickstart"), ("models", "random:llama2-7b")]:
        out = cli("list", what)
        assert out.exit_code == 0 and expected in out.stdout


BAD_SUITES = {
    "malformed": "name: x\nmodels: [unclosed\n",
    "unknown-hparam": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods:\n  floor: {}\n  mezo: {lr: 1.0e-3, foo: 1}\n",
    "wrong-type": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods:\n  floor: {}\n  mezo: {lr: fast}\n",
    "bad-choice": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods:\n  ft: {optimizer: adam}\n",
    "unknown-method": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods:\n  magic: {}\n",
    "unknown-setting": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods: {floor: {}}\nsteeps: 3\n",
    "wrong-setting-type": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods: {floor: {}}\nsteps: many\n",
    "bad-policy": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods: {floor: {}}\ndivergence_policy: panic\n",
    "bad-target": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods: {floor: {}}\ntarget: {metric: bleu, value: 1}\n",
    "bad-threshold": "name: x\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods: {floor: {}}\nthresholds: {speed: 1}\n",
}
BAD_ARGS = {
    "unknown-suite": (["--suite", "nope"], "valid suites"),
    "unknown-method-filter": (["--suite", "smoke", "--methods", "nope"], "its methods"),
    "unknown-task": (["--suite", "smoke", "--tasks", "nope"], "valid tasks"),
    "unknown-model": (["--suite", "smoke", "--models", "nope"], "valid"),
    "unknown-random-model": (["--suite", "smoke", "--models", "random:nope"], "random:tiny-llama"),
    "bad-seeds": (["--suite", "smoke", "--seeds", "x"], "integers"),
    "bad-split-sizes": (["--suite", "smoke", "--split-sizes", "train=x"], "train=N"),
    "unknown-split": (["--suite", "smoke", "--split-sizes", "valid=8"], "train=N"),
    "missing-data-dir": (["--suite", "smoke", "--data-dir", "/does/not/exist"], "ZOBENCH_DATA_DIR"),
    "missing-data": (["--suite", "smoke", "--tasks", "sst2", "--data-dir", "."], "ZOBENCH_DATA_DIR"),
    "unknown-executor": (["--suite", "smoke", "--executor", "k8s"], "valid: local, ray, slurm"),
    "bad-executor-option": (["--suite", "smoke", "--executor", "slurm", "--executor-option", "nodes=3"], "valid: partition"),
    "detach-without-slurm": (["--suite", "smoke", "--detach"], "--detach needs --executor slurm"),
    "gpu-not-visible": (["--suite", "smoke", "--gpus", "0,7"], "not visible"),
}


def assert_clean_rejection(code: int, stderr: str, results: Path, needle: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert needle in lines[0]
    assert not results.exists(), "bad input must write nothing"


SUITE_NEEDLES = {"malformed": "malformed YAML", "unknown-hparam": "valid: lr", "wrong-type": "must be float",
                 "bad-choice": "valid: adamw, sgd", "unknown-method": "valid methods", "unknown-setting": "valid:",
                 "wrong-setting-type": "must be int", "bad-policy": "valid: continue, stop",
                 "bad-target": "dev_accuracy | train_loss", "bad-threshold": "valid: peak_mem"}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_bad_suite_files_exit_2_and_write_nothing(case, tmp_path):
    """In-process (test_bad_input.py keeps real-command cases of the same contract)."""
    suite = tmp_path / f"{case}.yaml"
    suite.write_text(BAD_SUITES[case])
    result = cli("run", "--suite", suite, "--results-dir", tmp_path / "res")
    assert_clean_rejection(result.exit_code, result.stderr, tmp_path / "res", SUITE_NEEDLES[case])


@pytest.mark.parametrize("case", sorted(BAD_ARGS))
def test_bad_arguments_exit_2_and_write_nothing(case, tmp_path, monkeypatch):
    args, needle = BAD_ARGS[case]
    monkeypatch.chdir(tmp_path)  # "--data-dir ." is this empty folder
    result = cli("run", *args, "--results-dir", tmp_path / "res")
    assert_clean_rejection(result.exit_code, result.stderr, tmp_path / "res", needle)


@pytest.mark.integration
def test_bad_arguments_through_the_real_command(tmp_path):
    """The same contract from a real process: exit status 2 and one line on its stderr."""
    proc = zobench("run", "--suite", "smoke", "--tasks", "nope", "--results-dir", str(tmp_path / "res"), cwd=tmp_path)
    assert_clean_rejection(proc.returncode, proc.stderr, tmp_path / "res", "valid tasks")


def test_readme_test_command_is_what_ci_runs():
    """.ci/run must call the README's test command verbatim."""
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = readme.split("<!-- test-command -->")[1].split("```")[1].strip().removeprefix("bash").strip()
    assert command and command in ci


@pytest.mark.integration
def test_pending_entries_print_one_line_each_and_the_rest_runs(tmp_path):
    """A suite's pending method and task are named on stderr with their reason; the runnable cells run."""
    suite = tmp_path / "p.yaml"
    suite.write_text("# zobench run --suite p.yaml\nname: p\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\n"
                     "steps: 2\nbatch_size: 4\nsplit_sizes: {train: 8, dev: 4, test: 4}\nmethods: {floor: {}}\n"
                     "pending:\n  methods: {zo-future: being written}\n  tasks: {gsm8k: not written yet}\n")
    res = tmp_path / "res"
    proc = zobench("run", "--suite", str(suite), "--results-dir", str(res), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "pending method 'zo-future' skipped: being written" in lines
    assert "pending task 'gsm8k' skipped: not written yet" in lines
    assert [p.stem for p in (res / "runs" / "p").glob("*.json")] == ["random-tiny-llama--synthetic--floor--s0"]
