"""Cells that span several GPUs: the setting, device counting, and memory summed over the
cell's GPUs with each GPU's own figure kept (testable without a GPU)."""

from __future__ import annotations

import pytest

from executor_cells import make_cell
from zobench.api import Cell, UserError
from zobench.run.multigpu import cell_gpus
from zobench.run.suite import expand, parse_suite
from zobench.measure.nvml import combine_samples

SUITE = """
name: mg
models: ["random:tiny-llama"]
tasks: [synthetic]
device: cpu
gpus: {gpus}
methods:
  floor: {{}}
  mezo: {{lr: 1.0e-3, gpus: 4}}
"""


def test_gpus_per_suite_and_per_method():
    """A suite's gpus applies to every cell; a method entry overrides it; below 1 is bad input."""
    cells = {c.label: c for c in expand(parse_suite(SUITE.format(gpus=2), "t"))}
    assert cells["floor"].gpus == 2 and cells["mezo"].gpus == 4
    with pytest.raises(UserError, match="at least 1"):
        expand(parse_suite(SUITE.format(gpus=0), "t"))


def test_one_gpu_cells_keep_their_old_record_form():
    """gpus=1 stays out of the stored cell (records from before the field still resume); other counts are kept
    and read back."""
    one, four = make_cell(0, gpus=1), make_cell(1, gpus=4)
    assert "gpus" not in one.to_dict() and Cell(**one.to_dict()).gpus == 1
    assert four.to_dict()["gpus"] == 4 and Cell(**four.to_dict()) == four


def test_memory_is_summed_over_the_cells_gpus():
    """Process memory adds up over the GPUs and each GPU's figure is kept in order; one unknown GPU makes
    the sum unknown rather than low; other processes' pids are merged."""
    samples = [{"process_bytes": 10, "device_used_bytes": 100, "foreign_pids": [7]},
               {"process_bytes": 30, "device_used_bytes": 300, "foreign_pids": [9, 7]}]
    combined = combine_samples(samples)
    assert combined == {"process_bytes": 40, "device_used_bytes": 400, "foreign_pids": [7, 9], "per_gpu": [10, 30]}
    samples[1]["process_bytes"] = None
    assert combine_samples(samples)["process_bytes"] is None


def test_cell_gpus_counts_only_cuda_and_refuses_too_few():
    """A CPU cell holds no GPU; a CUDA cell that sees fewer GPUs than it needs fails loudly."""
    assert cell_gpus("cpu", 4) == 0
    import torch

    if torch.cuda.device_count() < 2:
        with pytest.raises(RuntimeError, match="needs 2 GPUs"):
            cell_gpus("cuda", 2)
