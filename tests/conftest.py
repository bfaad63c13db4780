"""Shared fixtures: a tiny random Llama (no download), real smoke-suite records and the data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zobench.models import load_model
from zobench.scoring.causal_lm import collate, encode
from zobench.tasks import get_task

REPO = Path(__file__).resolve().parent.parent


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
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("benchmark data not found: set ZOBENCH_DATA_DIR to a folder laid out like shared/data")
    return path


@pytest.fixture(scope="session")
def smoke_records(tmp_path_factory) -> Path:
    """A results dir with real records of the smoke suite (tiny model, 8 steps: 7 timed).

    Shared by the compare, report and asv tests; tests that change records copy it first.
    """
    results = tmp_path_factory.mktemp("smoke") / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "zobench.cli", "run", "--suite", "smoke", "--steps", "8",
                           "--results-dir", str(results)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return results


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
