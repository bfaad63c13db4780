"""Everything a careless or hostile user can type, and what it must get.

The invariant for every bad input: exit 2, one line on stderr (``error: ...``), and the
results dir unchanged byte for byte (``Snapshot``). Most cases run in-process through
typer's CliRunner (fast); each category keeps one subprocess case for the real CLI contract.
Readers of corrupt records, the gate, signals and concurrent runs have their own contracts,
stated in each test's docstring. Cells that really run use random:tiny-llama, 2 steps and
tiny splits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from zobench.api import UserError
from zobench.cli import app
from zobench.paths import checked_child
from zobench.results.records import scan
from zobench.results.store import WriteError, atomic_write_text, load_results, record_path, write_record
from zobench.run.suite import expand, parse_suite
from zobench.run.worker import new_record

BASE = {
    "name": "bad", "models": ["random:tiny-llama"], "tasks": ["synthetic"], "methods": {"mezo": {}},
    "steps": 2, "batch_size": 2, "split_sizes": {"train": 4, "dev": 2, "test": 2}, "max_length": 32,
    "eval_batch_size": 4, "timeout_s": 300, "monitor": False,
}
ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


# ---------------------------------------------------------------- helpers

def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root``: folders, and files with their bytes and mode (nothing if absent)."""
    if not root.exists():
        return {}
    if root.is_file():
        return {".": (root.read_bytes(), root.stat().st_mode)}
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            out[rel] = ("special", path.lstat().st_mode)
        elif path.is_dir():
            out[rel] = ("dir", path.stat().st_mode)
        else:
            out[rel] = (path.read_bytes(), path.stat().st_mode)
    return out


def cli(*args: str):
    result = CliRunner(env=ENV).invoke(app, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        f"traceback instead of a clean exit: {result.exception!r}"
    return result


def zobench(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV}
    env.pop("ZOBENCH_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "zobench.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def assert_refused(code: int, stderr: str, results: Path, before: dict, says: str = "") -> None:
    """The bad-input contract: exit 2, exactly one line on stderr, the results dir untouched."""
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one line: {stderr!r}"
    assert len(lines[0]) < 600, "a value in the message was not truncated"
    assert says.lower() in lines[0].lower(), lines[0]
    assert snapshot(results) == before, "the results dir changed"


def suite_file(tmp_path: Path, text: str | None = None, **changes) -> Path:
    spec = {**BASE, **changes}
    path = tmp_path / "suite.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(spec), encoding="utf-8")
    return path


def refused_run(tmp_path: Path, suite: Path, *extra: str, says: str = "") -> None:
    results = tmp_path / "res"
    before = snapshot(results)
    result = cli("run", "--suite", suite, "--results-dir", results, *extra)
    assert_refused(result.exit_code, result.stderr, results, before, says)


# ---------------------------------------------------------------- names and paths

@pytest.mark.parametrize("name", ["../../x", "/abs/x", "", ".hidden", "a/b", "x" * 300, "a b", "tab\tname"])
def test_suite_names_that_are_not_names_are_refused(tmp_path, name):
    """A suite name becomes a folder: anything but a safe name is exit 2, nothing written."""
    refused_run(tmp_path, suite_file(tmp_path, name=name), says="name")


@pytest.mark.parametrize("label", ["../evil", "a/b", "new\nline", "x" * 101])
def test_method_labels_that_are_not_names_are_refused(tmp_path, label):
    """A method label becomes part of a record's file name."""
    refused_run(tmp_path, suite_file(tmp_path, methods={label: {"method": "mezo"}}), says="label")


def test_a_model_whose_id_is_no_file_name_is_refused(tmp_path):
    """The model's last path part is the cell id's first part: `x/..` would name the parent folder."""
    refused_run(tmp_path, suite_file(tmp_path), "--models", "x/..", says="cell id")


def test_every_record_path_is_checked_again_when_written(tmp_path):
    """Second line of defence: a record whose suite slipped past the name check still cannot escape."""
    cell = expand(parse_suite(yaml.safe_dump(BASE), "t"))[0]
    record = new_record(cell)
    record["cell"]["suite"] = "../../outside"
    with pytest.raises(UserError, match="outside"):
        write_record(tmp_path / "res", record)
    with pytest.raises(UserError):
        record_path(tmp_path, "ok", "../../x")
    with pytest.raises(UserError):
        checked_child(tmp_path, "/etc/passwd")
    assert not (tmp_path / "outside").exists() and not (tmp_path.parent / "outside").exists()


@pytest.mark.parametrize("commit", ["../x", "zz12", "abc", "/tmp/x"])
def test_nightly_commit_must_be_a_hex_sha(tmp_path, commit):
    """`nightly --commit` names a folder of the store."""
    store = tmp_path / "store"
    before = snapshot(store)
    result = cli("nightly", "--suite", suite_file(tmp_path), "--store", store, "--commit", commit, "--no-asv",
                 "--out", tmp_path / "out")
    assert_refused(result.exit_code, result.stderr, store, before, says="--commit")
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_nightly_commit_subprocess(tmp_path):
    """The same through the real command line."""
    proc = zobench("nightly", "--suite", suite_file(tmp_path), "--store", tmp_path / "store", "--commit", "../../x",
                   "--no-asv", cwd=tmp_path)
    assert_refused(proc.returncode, proc.stderr, tmp_path / "store", {}, says="--commit")


# ---------------------------------------------------------------- suite values

@pytest.mark.parametrize("changes, says", [
    ({"steps": 0}, "steps"), ({"steps": -1}, "steps"), ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -1}, "batch_size"), ({"warmup_steps": 2}, "warmup_steps"), ({"warmup_steps": -1}, "warmup_steps"),
    ({"split_sizes": {"train": 4, "dev": 2, "test": 0}}, "split_sizes.test"),
    ({"split_sizes": {"train": 4, "bogus": 3}}, "bogus"), ({"split_sizes": {"train": 0}}, "split_sizes.train"),
    ({"split_sizes": {"train": "4"}}, "split_sizes.train"),
    ({"max_length": 1}, "max_length"), ({"eval_batch_size": 0}, "eval_batch_size"), ({"timeout_s": 0}, "timeout_s"),
    ({"spike_factor": 0.5}, "spike_factor"), ({"rebound_delta": -1}, "rebound_delta"), ({"seeds": []}, "seeds"),
    ({"seeds": [-1]}, "seeds"), ({"models": []}, "models"), ({"tasks": []}, "tasks"), ({"methods": {}}, "methods"),
    ({"device": "cuda:99"}, "cuda:99"), ({"device": "tpu"}, "device"), ({"eval_every": -1}, "eval_every"),
    ({"data_seed": -3}, "data_seed"), ({"target": {"metric": "dev_accuracy", "value": float("nan")}}, "target"),
    ({"colour": "red"}, "unknown setting"), ({"steps": "x" * 10000}, "steps"), ({"timeout_s": float("inf")}, "timeout_s"),
    ({"dtype": "fp8"}, "dtype"), ({"tasks": ["no-such-task"]}, "no-such-task"),
])
def test_suite_values_out_of_range_are_refused(tmp_path, changes, says):
    """Every suite setting is range-checked before the first cell; the message names the setting."""
    refused_run(tmp_path, suite_file(tmp_path, **changes), says=says)


@pytest.mark.integration
def test_suite_value_subprocess(tmp_path):
    """`steps: 0` through the real command line."""
    proc = zobench("run", "--suite", suite_file(tmp_path, steps=0), "--results-dir", tmp_path / "res", cwd=tmp_path)
    assert_refused(proc.returncode, proc.stderr, tmp_path / "res", {}, says="steps")


# ---------------------------------------------------------------- hyperparameters

@pytest.mark.parametrize("methods, says", [
    ({"mezo": {"lr": 0}}, "lr"), ({"mezo": {"lr": float("nan")}}, "lr"), ({"mezo": {"lr": float("inf")}}, "lr"),
    ({"mezo": {"lr": -1e-3}}, "lr"), ({"mezo": {"queries": 0}}, "queries"), ({"mezo": {"eps": 0}}, "eps"),
    ({"lozo": {"rank": 0}}, "rank"), ({"lora": {"rank": 0}}, "rank"), ({"adazeta": {"rank": 0}}, "rank"),
    ({"ft": {"momentum": 1.5}}, "momentum"), ({"mezo": {"bogus": 1}}, "bogus"), ({"mezo": {"lr": "abc"}}, "lr"),
    ({"mezo": {"steps": 0}}, "steps"), ({"mezo": {"batch_size": 0}}, "batch_size"),
    ({"lora": {"targets": "no_such_module"}}, "cannot be built"), ({"x": {"method": "no-such-method"}}, "no-such-method"),
])
def test_hyperparameters_out_of_range_are_refused(tmp_path, methods, says):
    """Each method declares its hyperparameters' ranges; constructors run on the meta device in preflight."""
    refused_run(tmp_path, suite_file(tmp_path, methods=methods), says=says)


@pytest.mark.integration
def test_hyperparameter_subprocess(tmp_path):
    """`lr: .nan` through the real command line."""
    text = yaml.safe_dump(BASE).replace("mezo: {}", "mezo: {lr: .nan}")
    proc = zobench("run", "--suite", suite_file(tmp_path, text=text), "--results-dir", tmp_path / "res", cwd=tmp_path)
    assert_refused(proc.returncode, proc.stderr, tmp_path / "res", {}, says="finite")


# ---------------------------------------------------------------- YAML structure

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)) + "name: *i\n"
HEAD = "models: ['random:tiny-llama']\ntasks: [synthetic]\nsteps: 2\nbatch_size: 2\n"


@pytest.mark.parametrize("text, says", [
    ("name: a\nname: b\n" + HEAD + "methods: {mezo: {}}\n", "duplicate key 'name'"),
    ("name: a\n" + HEAD + "methods:\n  mezo: {lr: 1.0e-3, lr: 1.0e-2}\n", "duplicate key 'lr'"),
    ("name: a\n" + HEAD + "methods:\n  mezo: {}\n  mezo: {lr: 1.0e-3}\n", "duplicate key 'mezo'"),
    (BOMB, "aliases"),
    ("name: !!python/object/apply:os.system ['touch pwned']\n" + HEAD, "malformed"),
    ("name: x\nmodels: [unclosed\n", "malformed"),
    ("- just\n- a list\n", "mapping"),
    ("", "mapping"),
])
def test_yaml_structure_is_strict(tmp_path, text, says):
    """Duplicate keys, aliases (a billion laughs) and python tags are refused at the line they are on."""
    refused_run(tmp_path, suite_file(tmp_path, text=text), says=says)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.integration
def test_alias_bomb_subprocess(tmp_path):
    """The billion-laughs suite through the real command line: refused at once, in bounded memory."""
    t0 = time.monotonic()
    proc = zobench("run", "--suite", suite_file(tmp_path, text=BOMB), "--results-dir", tmp_path / "res",
                   cwd=tmp_path, timeout=120)
    assert_refused(proc.returncode, proc.stderr, tmp_path / "res", {}, says="aliases")
    assert time.monotonic() - t0 < 60


# ---------------------------------------------------------------- CLI options

@pytest.mark.parametrize("args, says", [
    (["run", "--steps", "0"], "--steps"), (["run", "--seeds", "a"], "--seeds"), (["run", "--bogus"], "--bogus"),
    (["run", "--suite", "no-such-suite"], "unknown suite"), (["run", "--suite", "missing.yaml"], "does not exist"),
    (["run", "--methods", "no-such-label"], "no-such-label"), (["run", "--tasks", "no-such-task"], "no-such-task"),
    (["compare", "a", "b", "--threshold", "nonsense"], "--threshold"), (["inspect", "--method", "mezo",
     "--model", "random:tiny-llama", "--set", "novalue"], "--set"), (["list", "nothing"], "nothing"),
    (["no-such-command"], "no-such-command"),
])
def test_bad_options_are_one_line(tmp_path, args, says):
    """Usage errors too are one line and exit 2 (not click's usage block)."""
    before = snapshot(tmp_path)
    result = cli(*args, "--results-dir", tmp_path / "res") if args[0] == "run" else cli(*args)
    assert_refused(result.exit_code, result.stderr, tmp_path, before, says)


@pytest.mark.integration
def test_bad_option_subprocess(tmp_path):
    proc = zobench("run", "--steps", "0", "--results-dir", tmp_path / "res", cwd=tmp_path)
    assert_refused(proc.returncode, proc.stderr, tmp_path, {}, says="--steps")


# ---------------------------------------------------------------- data

def test_missing_data_dir_is_refused(tmp_path):
    refused_run(tmp_path, suite_file(tmp_path, tasks=["sst2"]), "--data-dir", tmp_path / "nowhere", says="data dir")


def test_data_dir_without_the_task_is_refused(tmp_path):
    """A data dir that lacks the task's files is bad input before any cell (no hub fallback offline)."""
    (tmp_path / "data").mkdir()
    refused_run(tmp_path, suite_file(tmp_path, tasks=["sst2"]), "--data-dir", tmp_path / "data", says="sst")


@pytest.mark.integration
def test_data_subprocess(tmp_path):
    proc = zobench("run", "--suite", suite_file(tmp_path, tasks=["sst2"]), "--data-dir", tmp_path / "nowhere",
                   "--results-dir", tmp_path / "res", cwd=tmp_path)
    assert_refused(proc.returncode, proc.stderr, tmp_path / "res", {}, says="data dir")


# ---------------------------------------------------------------- results-dir environment

@contextlib.contextmanager
def mounted(target: Path, *options: str):
    """A mount we need as root (chmod does not stop root); the test fails, never skips, if mount fails."""
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)
    assert proc.returncode == 0, f"mount {' '.join(options)} failed (these tests need root and mount): {proc.stderr}"
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_results_dir_that_is_a_file(tmp_path):
    results = tmp_path / "res"
    results.write_text("not a folder")
    before = snapshot(results)
    result = cli("run", "--suite", suite_file(tmp_path), "--results-dir", results)
    assert_refused(result.exit_code, result.stderr, results, before, "is a file")


@pytest.mark.integration
def test_read_only_results_dir(tmp_path):
    """A read-only results dir is found by the probe before the first cell."""
    source = tmp_path / "src"
    source.mkdir()
    with mounted(tmp_path / "ro", "--bind", str(source)) as ro:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        before = snapshot(ro)
        proc = zobench("run", "--suite", suite_file(tmp_path), "--results-dir", ro / "res", cwd=tmp_path)
        assert_refused(proc.returncode, proc.stderr, ro, before, "not writable")


def test_full_disk_results_dir(tmp_path):
    """A full disk is found by the probe (a page written and removed) before the first cell."""
    with mounted(tmp_path / "full", "-t", "tmpfs", "-o", "size=64k", "tmpfs") as full:
        with contextlib.suppress(OSError), open(full / "filler", "wb") as f:
            f.write(b"\0" * 200_000)
        before = snapshot(full)
        result = cli("run", "--suite", suite_file(tmp_path), "--results-dir", full / "res")
        assert_refused(result.exit_code, result.stderr, full, before, "no space")


def test_write_errors_leave_the_old_file_and_say_one_line(tmp_path):
    """A failed atomic write raises WriteError naming the file; what was there stays byte for byte."""
    with mounted(tmp_path / "full", "-t", "tmpfs", "-o", "size=64k", "tmpfs") as full:
        atomic_write_text(full / "record.json", "old\n")
        with contextlib.suppress(OSError), open(full / "filler", "wb") as f:
            f.write(b"\0" * 200_000)
        with pytest.raises(WriteError, match="No space"):
            atomic_write_text(full / "record.json", "x" * 100_000)
        assert (full / "record.json").read_text() == "old\n"
        assert sorted(p.name for p in full.iterdir()) == ["filler", "record.json"]  # no temp file left


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_respect_the_umask(tmp_path, mask, mode):
    """Records and reports get the mode a plain open() gives, so a shared results dir stays readable."""
    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == mode


def test_report_html_into_an_unwritable_place_is_one_line(tmp_path, reader_dir):
    """`report --html` under a file (not a folder): one line, a documented exit code (3), no traceback."""
    (tmp_path / "afile").write_text("x")
    before = snapshot(reader_dir)
    result = cli("report", "--results-dir", reader_dir, "--html", tmp_path / "afile" / "sub" / "r.html")
    assert result.exit_code == 3
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == \
        [result.stderr.strip().splitlines()[-1]]
    assert snapshot(reader_dir) == before


# ---------------------------------------------------------------- corrupt records, every reader

def fake_record(label: str = "mezo", status: str = "ok", seed: int = 0, **metrics) -> dict:
    suite = parse_suite(yaml.safe_dump({**BASE, "methods": {label: {"method": "mezo"}}, "seeds": [seed]}), "t")
    record = new_record(expand(suite)[0])
    record.update(status=status, metrics={"peak_mem_bytes": 2**20, "step_time_s": 0.01, "accuracy": 0.5,
                                          "step0_accuracy": 0.5, "forwards_per_step": 2, "steps_done": 2,
                                          "forwards_total": 4, "divergence_events": 0, **metrics},
                  series={"loss": [0.7, 0.6], "step_time_s": [0.01, 0.01, 0.01, 0.01]})
    return record


@pytest.fixture
def reader_dir(tmp_path) -> Path:
    """One good record and every kind of bad file beside it."""
    res = tmp_path / "readers"
    write_record(res, fake_record())
    bad = res / "runs" / "bad"  # beside the good record (its suite is "bad" too)
    (bad / "truncated.json").write_text(json.dumps(fake_record("other"))[:50])
    (bad / "empty.json").write_text("")
    (bad / "not-json.json").write_text("hello")
    (bad / "foreign.json").write_text(json.dumps({"schema_version": 1, "whatever": True}))
    (bad / "list.json").write_text("[1, 2]")
    (bad / "future.json").write_text(json.dumps({**fake_record("future"), "schema_version": 999}))
    (bad / "latin1.json").write_bytes(b"\xff\xfe\x00garbage")
    os.mkfifo(bad / "fifo.json")
    copy = res / "copy" / "runs" / "bad"  # a nested copy of the same cell: never averaged in
    copy.mkdir(parents=True)
    (copy / "dup.json").write_text(json.dumps(fake_record(accuracy=0.0)))
    return res


BAD_FILES = 9


def assert_warned(stderr: str, skipped: int = BAD_FILES) -> None:
    lines = stderr.strip().splitlines()
    warnings = [line for line in lines if line.startswith("warning: skipped ")]
    assert len(warnings) == skipped, stderr
    assert any(f"{skipped} file(s)" in line for line in lines), stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", [["show"], ["report"], ["report", "--html", "HTML"]])
def test_readers_skip_every_bad_file_with_one_warning_each(tmp_path, reader_dir, command):
    """show, report and report --html read the good record and name each skipped file once."""
    command = [str(tmp_path / "html") if c == "HTML" else c for c in command]
    if "--html" in command:
        (tmp_path / "html").mkdir()
    before = snapshot(reader_dir)
    result = cli(*command, "--results-dir", reader_dir)
    assert result.exit_code == 0, result.stderr
    assert_warned(result.stderr)
    assert snapshot(reader_dir) == before
    if "--html" in command:
        assert (tmp_path / "html" / "report.html").is_file()  # DIR is a folder: written into it


def test_the_one_reader_refuses_unknown_schemas_and_duplicates(reader_dir):
    """Unknown schema_version is skipped, the nested duplicate is not averaged in (accuracy stays 0.5)."""
    lines: list[str] = []
    found = scan(reader_dir, lines.append)
    assert found.skipped == BAD_FILES and len(found.records) == 1
    assert any("schema_version 999" in line for line in lines)
    assert any("second record" in line for line in lines)
    assert any("not a regular file" in line for line in lines)
    assert load_results(reader_dir, warn=None).accuracy.tolist() == [0.5]


def test_only_bad_files_is_one_error_after_the_warnings(reader_dir):
    """With no readable record left, a reader says so in one error line after its warnings (exit 2)."""
    (reader_dir / "runs" / "bad" / "random-tiny-llama--synthetic--mezo--s0.json").unlink()
    (reader_dir / "copy" / "runs" / "bad" / "dup.json").unlink()
    result = cli("show", "--results-dir", reader_dir)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: no records") and all(line.startswith("warning: ") for line in lines[:-1])


@pytest.mark.integration
def test_fifo_does_not_hang_the_reader_subprocess(tmp_path, reader_dir):
    """A FIFO named *.json would block a reader forever; the real command finishes at once."""
    proc = zobench("report", "--results-dir", reader_dir, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_warned(proc.stderr)


# ---------------------------------------------------------------- gate verdicts

def sides(tmp_path: Path, base: list[dict], head: list[dict]) -> tuple[Path, Path]:
    for name, records in (("base", base), ("head", head)):
        for record in records:
            write_record(tmp_path / name, record)
    return tmp_path / "base", tmp_path / "head"


def test_gate_with_nothing_in_common_is_exit_2(tmp_path):
    base, head = sides(tmp_path, [fake_record("a")], [fake_record("b")])
    result = cli("compare", base, head)
    assert_refused(result.exit_code, result.stderr, tmp_path / "none", {}, "nothing to compare")


def test_gate_fails_when_head_lacks_a_cell(tmp_path):
    """A HEAD that died halfway is not green; --allow-missing says so explicitly."""
    base, head = sides(tmp_path, [fake_record("a"), fake_record("b")], [fake_record("a")])
    assert cli("compare", base, head).exit_code == 1
    allowed = cli("compare", base, head, "--allow-missing")
    assert allowed.exit_code == 0 and "missing (allowed)" in allowed.stdout


def test_gate_fails_when_heads_record_is_unreadable(tmp_path):
    base, head = sides(tmp_path, [fake_record("a"), fake_record("b")], [fake_record("a"), fake_record("b")])
    victim = next((head / "runs" / "bad").glob("*--b--*.json"))
    victim.write_text(victim.read_text()[:100])
    proc = zobench("compare", base, head, cwd=tmp_path)
    assert proc.returncode == 1 and "missing in HEAD" in proc.stdout and "warning: skipped" in proc.stderr


def test_gate_passes_identical_sides(tmp_path):
    base, head = sides(tmp_path, [fake_record("a")], [fake_record("a")])
    assert cli("compare", base, head).exit_code == 0


# ---------------------------------------------------------------- reports on partial data

def test_reports_render_failed_nan_and_odd_labels_literally(tmp_path):
    """Only-failed labels, None/NaN metrics and labels with | $ and newlines never crash a report."""
    records = [fake_record("failed", status="error", peak_mem_bytes=None, accuracy=None, step_time_s=None),
               fake_record("nan", accuracy=float("nan"), peak_mem_bytes=None)]
    for i, odd in enumerate(("a|b", "x$y", "two\nlines")):
        record = fake_record("odd")
        record["cell"]["label"] = odd  # as an old or hand-edited record may hold
        record["cell_id"] = f"odd-{i}"
        records.append(record)
    records[0]["metrics"] = {}
    for record in records:
        write_record(tmp_path / "res", record)
    result = cli("report", "--results-dir", tmp_path / "res", "--html", tmp_path)
    assert result.exit_code == 0 and not result.stderr, result.stderr
    assert "| failed | error 1 |" in result.stdout
    assert "a\\|b" in result.stdout and "x\\$y" in result.stdout and "| two lines |" in result.stdout
    assert (tmp_path / "report.html").is_file()


# ---------------------------------------------------------------- signals and deaths

def cell_children(pid: int) -> list[int]:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    return []


def start_run(tmp_path: Path, results: Path, **changes) -> subprocess.Popen:
    env = {**os.environ, **ENV, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "zobench.cli", "run", "--suite", suite_file(tmp_path, **changes),
                             "--results-dir", results], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for_cell(proc: subprocess.Popen, timeout: float = 120) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        children = cell_children(proc.pid)
        if children:
            return children
        time.sleep(0.2)
    raise AssertionError("no cell process started")


def gone(pids: list[int], timeout: float = 30) -> bool:
    import psutil

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]:
            return True
        time.sleep(0.2)
    return False


SLOW = {"steps": 10_000, "timeout_s": 600}


@pytest.mark.integration
def test_sigterm_gets_the_ctrl_c_cleanup(tmp_path):
    """SIGTERM (what CI and `timeout` send): exit 143, one line, the cell and its scratch gone, claim released."""
    results = tmp_path / "res"
    proc = start_run(tmp_path, results, **SLOW)
    children = wait_for_cell(proc)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("interrupted:") and "Traceback" not in err
    assert gone(children)
    assert not list((tmp_path / "tmp").glob("zobench-*")), "a scratch folder was left behind"
    assert not list(results.glob("claims/*/*.claim")), "the claim was not released"
    assert not list(results.glob("runs/*/*.json"))


@pytest.mark.integration
def test_sigkill_to_the_parent_alone_ends_the_cell(tmp_path):
    """The parent killed outright (nothing of it runs): the cell dies too and removes its scratch folder."""
    proc = start_run(tmp_path, tmp_path / "res", **SLOW)
    children = wait_for_cell(proc)
    time.sleep(2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert gone(children), "the cell outlived its parent"
    assert not list((tmp_path / "tmp").glob("zobench-*")), "a scratch folder was left behind"


@pytest.mark.integration
def test_ctrl_c_is_one_line(tmp_path):
    """Ctrl-C reaches the whole process group: one line from the parent, no traceback from the cell or monitor."""
    proc = start_run(tmp_path, tmp_path / "res", **{**SLOW, "monitor": True})
    children = wait_for_cell(proc)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert gone(children)


# ---------------------------------------------------------------- two concurrent runs

@pytest.mark.integration
def test_two_runs_on_one_results_dir_run_each_cell_once(tmp_path):
    """Claims: the second run skips the cell the first one holds, and says so; one record per cell."""
    results = tmp_path / "res"
    methods = {"floor": {}, "mezo": {}}
    first = start_run(tmp_path, results, methods=methods)
    second = start_run(tmp_path, results, methods=methods)  # at once: they race for the first cell
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert "running elsewhere" in err1 + err2
    started = [line for line in (err1 + err2).splitlines() if "done," in line and "left" in line]
    assert len(started) == 2, "a cell ran twice"  # two cells, each started once in all
    assert len(list(results.glob("runs/bad/*.json"))) == 2
    assert not list(results.glob("claims/*/*.claim"))


def test_a_live_claim_is_skipped_in_process(tmp_path):
    """A cell a live owner holds is not run: one progress line, no record."""
    from zobench.run.claims import try_claim

    cell = expand(parse_suite(yaml.safe_dump(BASE), "t"))[0]
    results = tmp_path / "res"
    held = try_claim(results, cell.suite, cell.cell_id)
    result = cli("run", "--suite", suite_file(tmp_path), "--results-dir", results)
    assert result.exit_code == 0, result.stderr
    assert "running elsewhere" in result.stderr
    assert not list(results.glob("runs/*/*.json"))
    held.release()


# ---------------------------------------------------------------- divergence the loss does not show

def test_non_finite_weights_end_the_cell_as_diverged():
    """AdamW at lr 3e37: after two steps the loss is still finite (ln 2), the weights are not (fp32 overflow).
    The end-of-training check makes the cell `diverged`, with a non_finite_params event."""
    from zobench.run.worker import execute_cell

    spec = {**BASE, "methods": {"ft": {"lr": 3e37}}, "steps": 2, "warmup_steps": 0}
    cell = expand(parse_suite(yaml.safe_dump(spec), "t"))[0]
    record = execute_cell({"cell": cell.to_dict(), "data_dir": None}, lambda kind, data: None)
    assert record["status"] == "diverged", record.get("error")
    kinds = [event["kind"] for event in record["divergence"]]
    assert "non_finite_params" in kinds and "non_finite_loss" not in kinds


def test_param_check_sees_one_bad_tensor():
    import torch

    from zobench.measure.divergence import DivergenceTracker

    tracker = DivergenceTracker()
    good, bad = torch.ones(3), torch.tensor([1.0, float("inf")])
    assert tracker.on_params(4, [good]) == []
    assert tracker.on_params(5, [good, bad]) == [{"step": 5, "kind": "non_finite_params", "tensors": 1}]


@pytest.mark.integration
def test_the_cell_enforces_its_own_deadline_and_removes_its_scratch(tmp_path):
    """A child whose parent never stops it (hung, stopped) ends itself past its deadline, scratch removed."""
    import multiprocessing as mp

    import launcher_targets

    from zobench.run.launcher import _child_main

    scratch = tmp_path / "scratch"
    (scratch / "zobench-best-x").mkdir(parents=True)
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(launcher_targets.hangs, None, child_conn, os.getpid(), 1.0, str(scratch)))
    child.start()
    child.join(60)
    assert not child.is_alive(), "the cell outlived its own deadline"
    child.kill() if child.is_alive() else None
    assert child.exitcode == 128 + signal.SIGKILL and not scratch.exists()


@pytest.mark.integration
def test_the_cells_temporary_files_go_to_the_parents_scratch_folder():
    """The best-on-dev checkpoint is a temporary file: it lands in the folder the parent removes."""
    import launcher_targets

    from zobench.run.launcher import run_isolated

    outcome = run_isolated(launcher_targets.temp_dir, None, timeout_s=120)
    assert outcome.status == "ok" and Path(outcome.result).name.startswith("zobench-cell-")
    assert not Path(outcome.result).exists()


@pytest.mark.parametrize("content", [b"garbage\n\x00\xff\n", b"sentence\tlabel\nfine\tnot-a-number\n", b"other\tcols\n1\t2\n"])
def test_corrupt_data_files_are_bad_input(tmp_path, content):
    """A data file that is not the task's format (bytes, wrong values, wrong columns): one line, before any cell."""
    sst2 = tmp_path / "data" / "glue" / "SST-2"
    sst2.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        (sst2 / name).write_bytes(content)
    refused_run(tmp_path, suite_file(tmp_path, tasks=["sst2"]), "--data-dir", tmp_path / "data", says="sst2")
