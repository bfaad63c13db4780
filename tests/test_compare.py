"""The regression gate `zobench compare`: per-metric thresholds, noise-aware decisions, exit codes."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zobench.cli import app
from zobench.results.store import write_record

SMOKE = "random-tiny-llama--synthetic--{label}--s{seed}"


def gate(*args: str):
    return CliRunner().invoke(app, ["compare", *map(str, args)])


def records(results: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (results / "runs" / "smoke").glob("*.json")}


def edit(results: Path, label: str, change, seed: int = 0) -> None:
    """Apply ``change(record)`` to one stored record and write it back."""
    record = records(results)[SMOKE.format(label=label, seed=seed)]
    change(record)
    write_record(results, record)


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def add_seeds(results: Path, seeds: list[int]) -> None:
    """Copies of seed 0 under other seeds, so the paired test has several seeds to work on."""
    for record in records(results).values():
        for seed in seeds:
            clone = json.loads(json.dumps(record))
            clone["cell"]["seed"] = seed
            clone["cell_id"] = record["cell_id"].replace("--s0", f"--s{seed}")
            write_record(results, clone)


def rows(out: str, label: str, metric: str) -> list[str]:
    return [line for line in out.splitlines() if f"--{label} " in line and f"| {metric} " in line]


def test_identical_records_pass_with_every_metric_compared(smoke_records):
    """BASE == HEAD: exit 0, and every cell has a row for each metric, none of them a regression."""
    result = gate(smoke_records, smoke_records)
    assert result.exit_code == 0, result.output
    for label in ("floor", "mezo", "ft"):
        for metric in ("peak memory", "step time", "error rate", "divergence events"):
            assert len(rows(result.stdout, label, metric)) == 1 and "REGRESSION" not in result.stdout
    assert "No regression." in result.stdout


def _scale(column: str, factor: float):
    def change(record):
        record["metrics"][column] *= factor
    return change


def _accuracy_minus(points: float):
    def change(record):
        record["metrics"]["accuracy"] -= points
    return change


def _events(n: int):
    def change(record):
        record["metrics"]["divergence_events"] = n
    return change


@pytest.mark.parametrize("change, metric, regressed", [
    (_scale("peak_mem_bytes", 1.10), "peak memory", True),
    (_scale("peak_mem_bytes", 1.03), "peak memory", False),
    (_accuracy_minus(0.125), "error rate", True),
    (_accuracy_minus(0.01), "error rate", False),
    (_events(2), "divergence events", True),
], ids=["mem+10%", "mem+3%", "acc-12.5pt", "acc-1pt", "2-events"])
def test_default_thresholds_decide_single_seed_changes(smoke_records, tmp_path, change, metric, regressed):
    """With one seed the default threshold alone decides (mem +5%, error +2 pt, any new divergence event)."""
    head = copy(smoke_records, tmp_path / "head")
    edit(head, "mezo", change)
    result = gate(smoke_records, head)
    assert result.exit_code == (1 if regressed else 0), result.output
    [row] = rows(result.stdout, "mezo", metric)
    assert ("REGRESSION" in row) == regressed and "threshold only (1 seed)" in row
    assert "REGRESSION" not in "".join(rows(result.stdout, "ft", metric) + rows(result.stdout, "floor", metric))


def test_suite_thresholds_and_command_line_overrides(smoke_records, tmp_path):
    """A suite's `thresholds` replace the defaults; --threshold replaces both."""
    head = copy(smoke_records, tmp_path / "head")
    edit(head, "mezo", _scale("peak_mem_bytes", 1.10))
    suite = tmp_path / "smoke.yaml"
    text = (Path(__file__).parent.parent / "suites" / "smoke.yaml").read_text()
    suite.write_text(text + "thresholds: {peak_mem: 0.2}\n")
    assert gate(smoke_records, head, "--suite", suite).exit_code == 0
    tight = gate(smoke_records, head, "--suite", suite, "--threshold", "peak_mem=0.08")
    assert tight.exit_code == 1 and "+8.0%" in rows(tight.stdout, "mezo", "peak memory")[0]


def _timings(seconds: list[float]):
    """Replace ft's step-time series (warm-up step first) and its median, as the worker stores them."""
    def change(record):
        record["series"]["step_time_s"] = [5.0] + seconds  # a slow warm-up step, left out of the test
        record["metrics"]["step_time_s"] = statistics.median(seconds)
    return change


def test_step_time_is_tested_on_the_per_step_samples(smoke_records, tmp_path):
    """Step time is decided by Mann-Whitney U on the timed steps: a clean 1.5× slowdown fails,
    a +12% median shift inside widely spread timings is reported as noise."""
    base = copy(smoke_records, tmp_path / "base")
    steady = [0.100, 0.101, 0.102, 0.103, 0.104, 0.105, 0.106]
    edit(base, "ft", _timings(steady))
    slower = copy(base, tmp_path / "slower")
    edit(slower, "ft", _timings([t * 1.5 for t in steady]))
    result = gate(base, slower)
    [row] = rows(result.stdout, "ft", "step time")
    assert result.exit_code == 1 and "REGRESSION" in row and "Mann-Whitney U on steps (7/7)" in row, result.output

    spread = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    edit(base, "ft", _timings(spread))
    shifted = copy(base, tmp_path / "shifted")
    edit(shifted, "ft", _timings([t + 0.05 for t in spread]))
    result = gate(base, shifted)
    [row] = rows(result.stdout, "ft", "step time")
    assert result.exit_code == 0 and "| noise " in row and "+12.5%" in row, result.output


def test_changes_within_seed_noise_are_not_regressions(smoke_records, tmp_path):
    """Over 3 seeds a consistent +10% memory fails (paired t-test), a mean +7% made of ±noise does not."""
    base = copy(smoke_records, tmp_path / "base")
    add_seeds(base, [1, 2])
    consistent = copy(base, tmp_path / "consistent")
    for seed, factor in zip((0, 1, 2), (1.10, 1.11, 1.12)):
        edit(consistent, "mezo", _scale("peak_mem_bytes", factor), seed)
    result = gate(base, consistent)
    [row] = rows(result.stdout, "mezo", "peak memory")
    assert result.exit_code == 1 and "REGRESSION" in row and "paired t-test (3 seeds)" in row

    noisy = copy(base, tmp_path / "noisy")
    for seed, factor in zip((0, 1, 2), (1.40, 0.80, 1.00)):
        edit(noisy, "mezo", _scale("peak_mem_bytes", factor), seed)
    result = gate(base, noisy)
    [row] = rows(result.stdout, "mezo", "peak memory")
    assert result.exit_code == 0 and "| noise " in row and "paired t-test (3 seeds)" in row


def test_forwards_to_target_and_losing_the_target(smoke_records, tmp_path):
    """More forwards to reach the target is a regression, and so is no longer reaching it."""
    base = copy(smoke_records, tmp_path / "base")
    edit(base, "ft", lambda r: r["metrics"].update(forwards_to_target=100))
    more = copy(base, tmp_path / "more")
    edit(more, "ft", lambda r: r["metrics"].update(forwards_to_target=130))
    result = gate(base, more)
    assert result.exit_code == 1 and "REGRESSION" in rows(result.stdout, "ft", "forwards to target")[0]
    lost = copy(base, tmp_path / "lost")
    edit(lost, "ft", lambda r: r["metrics"].pop("forwards_to_target"))
    result = gate(base, lost)
    [row] = rows(result.stdout, "ft", "forwards to target")
    assert result.exit_code == 1 and "reached 0/1" in row and "REGRESSION" in row


def test_a_cell_that_now_fails_is_a_regression(smoke_records, tmp_path):
    """ok in BASE, oom in HEAD: the status row fails the gate; oom on both sides is shown, not failed."""
    head = copy(smoke_records, tmp_path / "head")
    edit(head, "ft", lambda r: r.update(status="oom"))
    result = gate(smoke_records, head)
    [row] = rows(result.stdout, "ft", "status")
    assert result.exit_code == 1 and "ok → oom" in row and "REGRESSION" in row
    result = gate(head, head)
    [row] = rows(result.stdout, "ft", "status")
    assert result.exit_code == 0 and "oom → oom" in row and "| same " in row
    assert not rows(result.stdout, "ft", "peak memory"), "a failed cell's metrics are not compared"


def test_cells_on_one_side_are_listed(smoke_records, tmp_path):
    """A cell missing from HEAD and one new in HEAD are both named, and the rest is still compared.
    The missing one fails the gate (a HEAD that died halfway is no pass) unless --allow-missing."""
    head = copy(smoke_records, tmp_path / "head")
    (head / "runs" / "smoke" / (SMOKE.format(label="ft", seed=0) + ".json")).unlink()
    add_seeds(head, [5])
    failed = gate(smoke_records, head)
    assert failed.exit_code == 1 and "missing in HEAD" in failed.stdout, failed.output
    result = gate(smoke_records, head, "--allow-missing")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Only in BASE (1, not compared):\n- smoke/" + SMOKE.format(label="ft", seed=0) in out
    new_in_head = len(records(smoke_records)) - 1  # every seed-0 cell but the deleted ft, copied to seed 5
    assert f"Only in HEAD ({new_in_head}, not compared)" in out and SMOKE.format(label="mezo", seed=5) in out
    assert rows(out, "mezo", "peak memory") and not rows(out, "ft", "peak memory")


@pytest.mark.parametrize("args, needle", [
    (["{res}", "{tmp}/nope"], "HEAD '"),
    (["{tmp}", "{res}"], "no records under BASE"),
    (["{res}", "{res}", "--threshold", "speed=1"], "valid: peak_mem"),
    (["{res}", "{res}", "--threshold", "peak_mem=-1"], "must be a number >= 0"),
    (["{res}", "{res}", "--threshold", "alpha"], "KEY=NUMBER"),
    (["{res}", "{res}", "--suite", "nope"], "valid suites"),
    (["{res}", "{res}", "--suite", "quickstart"], "for suite 'quickstart'"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(smoke_records, tmp_path, args, needle):
    out = tmp_path / "cmp.md"
    args = [a.format(res=smoke_records, tmp=tmp_path) for a in args]
    result = gate(*args, "--out", out)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert not out.exists()


def test_every_gate_metric_has_a_default_threshold():
    """The gate's metrics and zobench.results.thresholds' defaults name the same keys, in the same order, plus alpha:
    a metric without a default would fail at its first comparison, not when the suite is parsed."""
    from zobench.results.compare import METRICS
    from zobench.results.thresholds import DEFAULT_THRESHOLDS

    assert [m.key for m in METRICS] + ["alpha"] == list(DEFAULT_THRESHOLDS)
