"""Shared fixtures, and the test tiers.

Tiers are markers (declared in pyproject.toml): ``unit`` (in-process, no model files; the default,
given here to every test not marked otherwise), ``integration`` (subprocesses: the CLI, suites,
executors; and in-process checks too costly for the quick loop) and ``real`` (SmolLM2, MiniLM, the
staged benchmark data). ``pytest -m unit`` is the quick loop, under 2 minutes on 2 cores; ``.ci/run``
runs every tier. A test that uses a fixture in ``TIER_OF_FIXTURE`` gets its tier
from it (the session's smoke run is integration, the staged data real), so no test forgets it.

Task data: ``data_dir`` gives each test that reads task files twice: the committed SYNTHETIC
fixture in tests/data (unit; every task's loader on a fresh clone) and the staged benchmark data
(real; skipped, saying why, where it is absent). ``staged_data`` is the staged data only, for
tests of facts about the real files.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zobench.models import load_model
from zobench.scoring.causal_lm import collate, encode
from zobench.tasks import get_task

# A shell starts background jobs (`cmd &` without job control, nohup) with SIGINT ignored, and an
# ignored signal is inherited across exec: then neither this process nor the `zobench run`s the Ctrl-C
# tests start would ever see a Ctrl-C, and those tests would fail for the launcher's reason, not
# zobench's. Python's own handler here is what an interactive terminal gives; exec resets a handled
# signal to its default in the children, so they get Ctrl-C as a user's shell would deliver it.
signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent
FIXTURE_DATA = REPO / "tests" / "data"  # SYNTHETIC rows in the staged layout (tests/data/README.md)
TIERS = ("unit", "integration", "real")
TIER_OF_FIXTURE = {"smoke_run": "integration", "smoke_records": "integration", "staged_data": "real",
                   "tiny_bert": "real"}  # tiny_bert: MiniLM's tokenizer files


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture, tier in TIER_OF_FIXTURE.items():
            if fixture in item.fixturenames and not item.get_closest_marker(tier):
                item.add_marker(tier)
        if not any(item.get_closest_marker(tier) for tier in ("integration", "real")):
            item.add_marker("unit")


@pytest.fixture
def tiny():
    """(model, tokenizer) for random:tiny-llama in fp32 on CPU, seeded."""
    model, tokenizer, _ = load_model("random:tiny-llama", "fp32", "cpu", seed=0)
    return model, tokenizer


@pytest.fixture
def tiny_batch(tiny):
    _, tokenizer = tiny
    splits = get_task("synthetic").load(None, {"train": 8, "dev": 2, "test": 2}, 0)
    return collate(encode(tokenizer, splits.train, 64), 0)


def shared_data_dir() -> Path | None:
    """$ZOBENCH_DATA_DIR, else the shared/data folder beside the checkout (as .ci/run sets it)."""
    candidates = [os.environ.get("ZOBENCH_DATA_DIR"), REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and (Path(c) / "glue" / "SST-2" / "train.tsv").is_file():
            return Path(c)
    return None


@pytest.fixture
def staged_data() -> Path:
    """The staged benchmark data (shared/data); the test is skipped, saying why, without it."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("benchmark data not found: set ZOBENCH_DATA_DIR to a folder laid out like shared/data")
    return path


@pytest.fixture(params=["fixture", pytest.param("staged", marks=pytest.mark.real)])
def data_dir(request) -> Path:
    """Task data in the staged layout: the committed synthetic fixture, then the staged data (real)."""
    if request.param == "fixture":
        return FIXTURE_DATA
    return request.getfixturevalue("staged_data")


@dataclasses.dataclass(frozen=True)
class SmokeRun:
    results: Path  # the results dir the run wrote
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> SmokeRun:
    """The whole smoke suite (every cell, tiny model, 8 steps: 7 timed) run once per session through
    the real CLI. Shared by the CLI, compare, report and asv tests; tests that change records copy it first."""
    results = tmp_path_factory.mktemp("smoke") / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("ZOBENCH_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "zobench.cli", "run", "--suite", "smoke", "--steps", "8",
                           "--results-dir", str(results)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return SmokeRun(results, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def smoke_records(smoke_run) -> Path:
    """The results dir of the session's smoke run."""
    return smoke_run.results


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _freeze_what_exists():
    """Before each test module, freeze what exists (torch, transformers, the test modules, what earlier
    modules keep alive) out of the garbage collector's reach. Every cell run in this process calls the
    memory tracker, which at each phase collects garbage and walks every live object
    (zobench/measure/heap.py): over a test session's objects that was most of a pinned-loss cell's
    time (1.4 s of a cell taking 0.2 s over what it made itself). Collected first, so no garbage is frozen;
    what the tests create stays collectable, and live_tensor_bytes counts the same tensors in a cell's
    baseline and in its phases (frozen ones in neither), so the tracker's figures keep their meaning."""
    gc.collect()
    gc.freeze()
