"""The Slurm executor against a real one-node Slurm (Debian's slurmctld, slurmd and munge,
started by .ci/slurm-up.sh, 4 logical GPUs, no accounting): records, ``zobench status``,
``zobench cancel``, and a rerun that submits nothing while the suite's jobs are queued.
If the daemons cannot be started these tests fail; they never skip. Select with ``-m slurm``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import submitit  # noqa: F401  (in the test extra: missing, these tests fail)

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.slurm]

SUITE = """
name: {name}
description: tiny cells for the Slurm tests
models: ["random:tiny-llama"]
tasks: [synthetic]
seeds: {seeds}
steps: 1
warmup_steps: 0
batch_size: 4
device: cpu
split_sizes: {{train: 8, dev: 4, test: 4}}
timeout_s: 300
executor: {{name: slurm, slurm: {{cpus: {cpus}}}}}
methods:
  floor: {{}}
"""


@pytest.fixture(scope="module")
def slurm():
    """Bring the one-node Slurm up (idempotent); fail, saying why, when it does not come up."""
    done = subprocess.run(["bash", str(REPO / ".ci" / "slurm-up.sh")], capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        pytest.fail(f"Slurm is not up: {done.stderr.strip()[-2000:]}")


def zobench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zobench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def suite_file(tmp_path: Path, name: str, seeds: list[int], cpus: int) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SUITE.format(name=name, seeds=seeds, cpus=cpus), encoding="utf-8")
    return path


def queued(job_ids: set[str]) -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout.split()
    return set(out) & job_ids if job_ids else set(out)


def test_slurm_run_stores_the_same_record_with_job_provenance(slurm, tmp_path):
    """A cell run as a Slurm job stores its record in the usual layout, names its job, keeps the
    job's stdout/stderr beside the records, and status reports it done."""
    suite = suite_file(tmp_path, "slurm-one", [0], cpus=1)
    run = zobench("run", "--suite", str(suite), "--results-dir", str(tmp_path / "r"))
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "r" / "runs" / "slurm-one" / "random-tiny-llama--synthetic--floor--s0.json").read_text())
    assert record["status"] == "ok" and record["executor"]["name"] == "slurm"
    job_id = record["executor"]["job_id"]
    assert job_id and record["executor"]["host"] and record["metrics"]["steps_done"] == 1
    logs = tmp_path / "r" / "runs" / "slurm-one" / "slurm" / record["cell_id"]
    assert (logs / f"{job_id}_0_log.out").is_file() and (logs / f"{job_id}_0_log.err").is_file()
    status = zobench("status", "--suite", "slurm-one", "--results-dir", str(tmp_path / "r"))
    assert status.returncode == 0 and "1 done" in status.stdout and f"slurm {job_id}" in status.stdout


def test_detach_status_rerun_and_cancel(slurm, tmp_path):
    """--detach returns after submitting; status shows the queued and running jobs; a rerun while they
    are queued submits nothing new; cancel removes them from the queue and frees the cells."""
    suite = suite_file(tmp_path, "slurm-queue", [0, 1, 2], cpus=2)  # 2 CPUs each: one job at a time
    results = str(tmp_path / "r")
    first = zobench("run", "--suite", str(suite), "--results-dir", results, "--detach")
    assert first.returncode == 0, first.stderr
    claims = [json.loads(p.read_text()) for p in (tmp_path / "r" / "claims" / "slurm-queue").glob("*.claim")]
    job_ids = {str(c["job_id"]) for c in claims}
    assert len(job_ids) == 3 and queued(job_ids) == job_ids
    status = zobench("status", "--suite", "slurm-queue", "--results-dir", results)
    assert "pending" in status.stdout and all(j in status.stdout for j in job_ids)

    before = queued(set())
    again = zobench("run", "--suite", str(suite), "--results-dir", results, "--detach")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("held by slurm job") == 3
    assert queued(set()) == before, "the rerun submitted new jobs"

    cancel = zobench("cancel", "--suite", "slurm-queue", "--results-dir", results)
    assert cancel.returncode == 0 and "cancelled 3 slurm job(s)" in cancel.stdout
    assert not queued(job_ids) - {j for j in job_ids if _completing(j)}
    after = zobench("status", "--suite", "slurm-queue", "--results-dir", results)
    assert "0 pending, 0 running" in after.stdout


def _completing(job_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout
    return out.strip() in ("COMPLETING", "CANCELLED")
