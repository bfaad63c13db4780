"""Every suite file in suites/ loads and expands into cells with unique, stable ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from zobench.suite import Overrides, expand, load_suite, suite_names

SUITE_FILES = sorted((REPO / "suites").rglob("*.yaml"))


def test_every_suite_file_is_installed():
    """Every YAML in suites/ is reachable by name through the installed zobench.suites package."""
    assert sorted(p.stem for p in SUITE_FILES) == suite_names()
    assert "quickstart" in suite_names()


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.stem)
def test_suite_expands(path: Path):
    """A suite file loads, expands to unique ids, includes the floor and names its command."""
    suite = load_suite(str(path))
    cells = expand(suite)
    assert cells and len({c.cell_id for c in cells}) == len(cells)
    assert any(c.method == "floor" for c in cells), "every suite includes the floor so reports can show ratios"
    assert path.read_text().startswith("# zobench run"), "a suite file opens with the command that runs it"


def test_cell_ids_are_stable_and_readable():
    """Cell ids are model--task--label--seed, so records keep their file names across runs."""
    cells = expand(load_suite("quickstart"))
    assert [c.cell_id for c in cells] == [
        "smollm2-135m--synthetic--floor--s0", "smollm2-135m--synthetic--mezo--s0", "smollm2-135m--synthetic--ft--s0"]


def test_overrides_filter_methods_and_replace_the_rest():
    cells = expand(load_suite("quickstart"), Overrides(methods=["mezo"], seeds=[1, 2], steps=4,
                                                        models=["random:tiny-llama"]))
    assert [(c.label, c.seed, c.steps, c.model) for c in cells] == [
        ("mezo", 1, 4, "random:tiny-llama"), ("mezo", 2, 4, "random:tiny-llama")]
