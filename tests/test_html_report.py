"""`zobench report --html`: a self-contained page that a real browser loads with every figure decoded."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from zobench import load_results
from zobench.results import figures
from zobench.cli import app
from zobench.results.store import read_record, write_record

HOSTILE = '<img src="x" id="injected">'

# Injected into a copy of the page by the test only: collects errors from the start, and on
# load (which waits for every image) writes what it saw into the DOM. Synchronous on purpose:
# --dump-dom does not wait for promises that virtual time does not cover.
CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || ('failed: ' + (e.target.alt || e.target.id || e.target.tagName)))), true);
window.addEventListener('load', () => {
  const images = [...document.images];
  const out = document.createElement('pre');
  out.id = 'zobench-check';
  out.textContent = JSON.stringify({errors: window.__errors, title: document.title,
    images: images.map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})),
    text: document.body.innerText});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str | None:
    return next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)


def hostile_copy(smoke_records, tmp_path):
    """The smoke records with one method label that is markup, as a careless suite could name it."""
    results = tmp_path / "results"
    shutil.copytree(smoke_records, results)
    path = results / "runs" / "smoke" / "random-tiny-llama--synthetic--mezo--s0.json"
    record = read_record(path)
    record["cell"]["label"] = HOSTILE
    write_record(results, record)
    return results


def test_html_report_loads_in_headless_chromium_with_every_figure(smoke_records, tmp_path):
    """The page loads without errors; its 4 figures are complete, decoded PNGs; record strings are escaped."""
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    results = hostile_copy(smoke_records, tmp_path)
    page = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--results-dir", str(results), "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "fwd to target" in result.stdout and "× floor" in result.stdout
    text = page.read_text()
    assert "http" not in text.replace("http-equiv", ""), "the page must not load anything from outside"
    assert HOSTILE not in text

    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("<head>", "<head>" + CHECK, 1))
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'id="zobench-check"' in proc.stdout, "the load handler never ran: " + proc.stderr[-2000:]
    dom = proc.stdout.split('id="zobench-check">', 1)[1].split("</pre>", 1)[0]
    seen = json.loads(dom.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&"))

    assert seen["errors"] == []
    captions = [image["alt"].split(",")[0] for image in seen["images"]]
    assert captions == ["Peak memory per method", "Memory vs accuracy", "Loss curves with divergence events",
                        "Step time per method"]
    for image in seen["images"]:
        assert image["complete"] and image["width"] == 640 and image["height"] == 360, image
    assert HOSTILE in seen["text"], "the hostile label is shown as text, not parsed as markup"


def test_loss_figure_marks_every_divergence_event(smoke_records):
    """Each divergence event in a record becomes one red cross at its step on that cell's curve."""
    rows = load_results(smoke_records)
    records = {r.cell_id: r.record for r in rows.itertuples()}  # as load_results read them
    mezo = next(cid for cid in records if "--mezo--" in cid)
    records[mezo]["divergence"] = [{"step": 3, "kind": "loss_spike"}, {"step": 6, "kind": "eval_loss_rebound"},
                                   {"step": -1, "kind": "restore_drift"}]
    fig = figures.loss_figure(rows, records)
    [ax] = fig.axes
    crosses = [c for c in ax.collections if c.get_label().startswith("divergence events")]
    assert len(crosses) == 1 and "mezo" in crosses[0].get_label()
    xy = crosses[0].get_offsets()
    losses = records[mezo]["series"]["loss"]
    assert [tuple(p) for p in xy.tolist()] == [(3, losses[2]), (6, losses[5]), (0, max(losses))]
    assert "3 divergence events" in ax.get_title()


def test_pareto_front_keeps_only_undominated_points():
    """A point is on the front unless another has no more memory and strictly more accuracy."""
    points = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (4.0, 0.9), (2.5, 0.7)]
    assert figures.pareto_front(points) == [(1.0, 0.5), (2.0, 0.7), (4.0, 0.9)]
