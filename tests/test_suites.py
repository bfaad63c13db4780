"""Every suite file in suites/ loads and expands into cells with unique, stable ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from zobench.api import UserError
from zobench.run.suite import Overrides, expand, load_suite, parse_suite, pending_for, suite_names

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


PENDING_SUITE = """name: p
models: ['random:tiny-llama']
tasks: [synthetic]
methods: {floor: {}, mezo: {}}
pending:
  methods: {zo-future: being written elsewhere, mezo-lora: waiting for nothing}
  tasks: {gsm8k: no such task yet}
"""


def test_pending_entries_are_kept_reported_and_never_expanded():
    """Pending methods and tasks make no cells; each is reported once, and one that exists is flagged."""
    suite = parse_suite(PENDING_SUITE, "test")
    assert {(c.label, c.task) for c in expand(suite)} == {("floor", "synthetic"), ("mezo", "synthetic")}
    entries = {(p.kind, p.name): p for p in pending_for(suite)}
    assert set(entries) == {("method", "zo-future"), ("method", "mezo-lora"), ("task", "gsm8k")}
    assert entries[("method", "zo-future")].message("test") == "pending method 'zo-future' skipped: being written elsewhere"
    assert not entries[("task", "gsm8k")].available
    assert entries[("method", "mezo-lora")].available  # it exists now: the message says to move it
    assert "move it into methods:" in entries[("method", "mezo-lora")].message("test")


def test_choosing_pending_entries_skips_them_and_choosing_only_pending_ones_is_an_error():
    """--methods/--tasks naming a pending entry skip it with its line; naming only pending ones runs nothing."""
    suite = parse_suite(PENDING_SUITE, "test")
    chosen = Overrides(methods=["mezo", "zo-future"], tasks=["synthetic", "gsm8k"])
    assert [(c.label, c.task) for c in expand(suite, chosen)] == [("mezo", "synthetic")]
    assert [p.name for p in pending_for(suite, chosen)] == ["zo-future", "gsm8k"]
    assert pending_for(suite, Overrides(methods=["mezo"], tasks=["synthetic"])) == []
    with pytest.raises(UserError, match="every chosen method is pending"):
        expand(suite, Overrides(methods=["zo-future"]))
    with pytest.raises(UserError, match="every chosen task is pending"):
        expand(suite, Overrides(tasks=["gsm8k"]))


@pytest.mark.parametrize("pending, needle", [
    ("{methods: {zo-future: ''}}", "map each name to a reason"),
    ("{models: {x: y}}", "pending takes methods and tasks"),
    ("{methods: {mezo: dup}}", "listed both in methods and in pending methods"),
])
def test_malformed_pending_sections_are_rejected(pending, needle):
    text = "name: p\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\nmethods: {floor: {}, mezo: {}}\n"
    with pytest.raises(UserError, match=needle):
        parse_suite(text + f"pending: {pending}\n", "test")


def test_method_entries_may_set_their_own_eval_every():
    """Papers validate at a fraction of each method's own run: a method's eval_every overrides the suite's."""
    text = "name: p\nmodels: ['random:tiny-llama']\ntasks: [synthetic]\neval_every: 100\n" \
           "methods: {floor: {}, ft: {steps: 20, eval_every: 5}}\n"
    assert {c.label: c.eval_every for c in expand(parse_suite(text, "test"))} == {"floor": 100, "ft": 5}
