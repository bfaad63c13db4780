"""The code's shape: a torch-free front door, no import circle, methods that import only zobench.api,
records read once, along one road, and a README layout that names every module."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from zobench.results.compare import compare
from zobench.results.figures import step_time_figure
from zobench.results.store import RECORD_COLUMN, load_results, write_record
from zobench.run.suite import Overrides, expand, load_suite
from zobench.results.thresholds import DEFAULT_THRESHOLDS
from zobench.run.worker import new_record

HEAVY = ("torch", "transformers")  # what a command that runs no model must not load


def _python(code: str) -> subprocess.CompletedProcess:
    """A fresh interpreter: this test process has torch loaded already (conftest)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)


def test_the_front_door_modules_import_no_torch():
    """Importing the CLI, the API, suite parsing, the gate, the reader and the reports loads neither torch
    nor transformers (the issue's check: `import zobench.cli` leaves 'torch' out of sys.modules)."""
    modules = ["zobench.cli", "zobench.api", "zobench.run.suite", "zobench.results.compare", "zobench.results.report", "zobench.results.store",
               "zobench.results.records", "zobench.results.thresholds", "zobench.results.formatting", "zobench.results.html_report"]
    code = f"""
import importlib, sys
for name in {modules!r}:
    importlib.import_module(name)
    loaded = [m for m in {HEAVY!r} if m in sys.modules]
    if loaded:
        sys.exit(f"importing {{name}} loaded {{loaded}}")
"""
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _cell_records(folder: Path, step_ms: float) -> Path:
    """Two cells' records with series (losses, 6 step times), as a finished run leaves them."""
    for cell in expand(load_suite("smoke"), Overrides(methods=["floor", "mezo"])):
        record = new_record(cell)
        record.update(status="ok", series={"loss": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5],
                                           "step_time_s": [step_ms / 1000 * (1 + i / 100) for i in range(6)]},
                      metrics={"accuracy": 0.5, "peak_mem_bytes": 2**30, "peak_mem_source": "cpu_vmhwm",
                               "step_time_s": step_ms / 1000, "forwards_per_step": 2, "warmup_steps": 1,
                               "divergence_events": 0})
        write_record(folder, record)
    return folder


def test_commands_that_run_no_model_import_no_torch(tmp_path):
    """--help, list suites, show, status, report (Markdown and HTML with figures) and compare on a records dir
    run without loading torch or transformers."""
    results = _cell_records(tmp_path / "results", 10.0)
    commands = [["--help"], ["list", "suites"], ["show", "--results-dir", str(results)],
                ["status", "--results-dir", str(results)],
                ["report", "--results-dir", str(results), "--html", str(tmp_path / "r.html")],
                ["compare", str(results), str(results), "--suite", "smoke"]]
    code = f"""
import sys
from typer.testing import CliRunner
from zobench.cli import app
for args in {commands!r}:
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        sys.exit(f"{{args}} exited {{result.exit_code}}: {{result.output}} {{result.exception!r}}")
    loaded = [m for m in {HEAVY!r} if m in sys.modules]
    if loaded:
        sys.exit(f"{{args}} loaded {{loaded}}")
"""
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "r.html").read_text().count("data:image/png") == 4


def _module_name(path: Path) -> str:
    """methods/ is installed as zobench.methods."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[0] == "methods":
        parts = ["zobench", "methods", *parts[1:]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for folder in ("zobench", "methods") for p in sorted((REPO / folder).rglob("*.py"))}


def _imports(tree: ast.AST, module: str, path: Path, known: set[str]) -> set[str]:
    """The zobench modules ``tree`` imports, at module level or inside functions (a lazy import is an import
    too); imports under ``if TYPE_CHECKING:`` never run and are left out."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from zobench.results import figures` imports the module zobench.results.figures
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {name: _imports(ast.parse(path.read_text(encoding="utf-8")), name, path, known)
            for name, path in sources.items()}


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph`` (a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_no_import_circle():
    """No zobench module imports, at module level or lazily in a function, a module that imports it back
    (suite ↔ compare went through parse_thresholds; zobench.results.thresholds is the leaf both use now)."""
    graph = import_graph()
    # the graph sees module-level imports, lazy ones (compare's gate loads the suite) and `from zobench import x`
    assert {"zobench.results.thresholds", "zobench.run.suite", "zobench.results.store"} <= graph["zobench.results.compare"]
    assert "zobench.results.figures" in graph["zobench.results.html_report"] and "zobench.results.thresholds" in graph["zobench.run.suite"]
    circle = _circle(graph)
    assert circle is None, "import circle: " + " → ".join(circle)


def test_the_circle_finder_finds_a_circle():
    """The check above can fail: a lazy import back from a leaf is a circle."""
    graph = import_graph()
    graph["zobench.results.thresholds"] = graph["zobench.results.thresholds"] | {"zobench.run.suite"}
    assert _circle(graph) is not None


def test_methods_import_from_zobench_only_the_api():
    """A method file imports from zobench only zobench.api (and methods/' own helpers): the API is the whole
    contract between a method and the harness."""
    graph = import_graph()
    methods = {name: deps for name, deps in graph.items() if name.startswith("zobench.methods")}
    assert "zobench.methods.mezo" in methods and "zobench.api" in methods["zobench.methods.mezo"]
    outside = {name: sorted(d for d in deps if d != "zobench.api" and not d.startswith("zobench.methods"))
               for name, deps in methods.items()}
    assert {name: deps for name, deps in outside.items() if deps} == {}


@pytest.fixture
def two_sides(tmp_path):
    return (load_results(_cell_records(tmp_path / "base", 10.0)),
            load_results(_cell_records(tmp_path / "head", 20.0)))


def test_the_gate_and_figures_read_the_records_load_results_read(two_sides, tmp_path):
    """After load_results the files are not read again: with them deleted, the gate still tests step time on
    the per-step samples, and the step-time figure still draws every cell's timed steps (warm-up left out)."""
    base, head = two_sides
    for file in (tmp_path / "base").rglob("*.json"):
        file.unlink()
    for file in (tmp_path / "head").rglob("*.json"):
        file.write_text(json.dumps({"not": "a record"}))
    result = compare(base, head, lambda suite: dict(DEFAULT_THRESHOLDS))
    step = result.table[result.table.metric == "step time"]
    assert len(step) == 2 and step.test.str.startswith("Mann-Whitney U on steps (5/5)").all()
    assert (step.verdict == "REGRESSION").all()
    fig = step_time_figure(base, dict(zip(base.cell_id, base[RECORD_COLUMN])))
    [ax] = fig.axes
    assert [label.get_text() for label in ax.get_xticklabels()] == ["floor", "mezo"]
    # the median of the 5 timed steps (10.1 … 10.5 ms); with the warm-up step it would be 10.25
    assert any(abs(y - 10.3) < 1e-6 for line in ax.lines for y in line.get_ydata())


def _layout_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_layout_names_every_package_and_module():
    """The README's Layout section names every package of zobench/ (as ``name/``) and every module outside
    tasks/ (whose modules it sums up as one per task), so a moved or added file shows up there too."""
    layout = _layout_section()
    words = set(re.findall(r"[a-z_]+(?:\.py|/)?", layout))
    packages = sorted(p.parent for p in (REPO / "zobench").rglob("__init__.py") if p.parent != REPO / "zobench")
    missing = [f"{p.name}/" for p in packages if f"{p.name}/" not in words]
    for path in sorted((REPO / "zobench").rglob("*.py")):
        if path.name != "__init__.py" and path.parent.name != "tasks":
            if path.stem not in words and path.name not in words:
                missing.append(str(path.relative_to(REPO)))
    assert missing == [], f"not in the README's Layout section: {missing}"
