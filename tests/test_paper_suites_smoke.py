"""Smoke versions of the paper suites: their real method settings on tiny random models,
overriding only model, steps and splits (and, to stay a few minutes, which tasks and seeds).
They run on the synthetic task-data fixture, and on the staged data where it exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# suite → (tiny model, extra CLI arguments choosing a few cells, the method labels expected)
SMOKES = {
    # COPA trains on the gold option's tokens; ft runs fp16 amp with loss scaling, mezo-lora fp16 LoRA.
    "opt-13b-superglue": ("random:tiny-opt", ["--tasks", "copa", "--split-sizes", "train=32,dev=8,test=8"],
                          {"floor", "mezo", "mezo-lora", "ft"}),
    # SST-2 k=16 holds 32 examples (the fixture 8): batch 64 is the whole set (a warning); AdaZeta with one query.
    "roberta-large-kshot": ("random:tiny-bert", ["--tasks", "lmbff-sst2-k16", "--seeds", "13", "--split-sizes", "test=64"],
                            {"floor", "mezo", "mezo-lora", "ft", "adazeta"}),
    # bf16 base: fp32 MeZO-LoRA adapters with weight decay, ft/lora under bf16 amp.
    "llama2-7b-superglue": ("random:tiny-llama", ["--tasks", "cb", "--split-sizes", "train=32,dev=8,test=8"],
                            {"floor", "mezo", "mezo-lora", "lozo", "adazeta", "ft", "lora"}),
}


@pytest.mark.integration
# random:tiny-bert uses MiniLM's tokenizer files (a `real` dependency).
@pytest.mark.parametrize("suite", [pytest.param(s, marks=pytest.mark.real) if SMOKES[s][0] == "random:tiny-bert" else s
                                   for s in sorted(SMOKES)])
def test_paper_suite_smoke_ends_with_every_cell_ok(suite, data_dir, tmp_path):
    """Every chosen cell of the suite ends `ok` with the suite's own method settings at 2 steps."""
    model, extra, labels = SMOKES[suite]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "ZOBENCH_DATA_DIR": str(data_dir)}
    results = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "zobench.cli", "run", "--suite", suite, "--models", model,
                           "--steps", "2", *extra, "--results-dir", str(results)],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (results / "runs" / suite).glob("*.json")]
    assert {r["cell"]["label"] for r in records} == labels
    for record in records:
        assert record["status"] == "ok", (record["cell_id"], record.get("error"))
        assert record["metrics"]["steps_done"] == 2
    if suite == "roberta-large-kshot":
        whole = [r for r in records if r["cell"]["batch_size"] == 64]
        assert whole and all(r["data"]["batches"]["effective_batch_size"] == r["data"]["split_sizes"]["train"] < 64
                             for r in whole)
