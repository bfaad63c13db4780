"""Records → one self-contained HTML page: per suite group the comparison table and four figures.

Figures are PNGs embedded as base64 data URIs, so the page is a single file that opens
anywhere (a CI artifact, an e-mail). Every string taken from a record is HTML-escaped.
Usage: ``text = html_report(load_results("results"))``.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from zobench.results import figures
from zobench.results.report import COLUMNS, FOOTNOTE, groups, summarise, table
from zobench.results.store import RECORD_COLUMN

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1em; }
figure { margin: 0; } img { max-width: 100%; }
"""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)  # a report may draw many figures; pyplot keeps them alive otherwise
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(fig, caption: str) -> str:
    caption = html.escape(caption)
    return (f'<figure><img alt="{caption}" src="data:image/png;base64,{_png(fig)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _table(group: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c.strip())}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
                   for row in table(group))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(df: pd.DataFrame, title: str = "zobench report") -> str:
    summary = summarise(df)
    sections = []
    for heading, group in groups(summary):
        suite, model, task = group.suite.iloc[0], group.model.iloc[0], group.task.iloc[0]
        rows = df[(df.suite == suite) & (df.model == model) & (df.task == task)]
        records: dict[str, dict[str, Any]] = dict(zip(rows.cell_id, rows[RECORD_COLUMN]))  # as load_results read them
        sources = ", ".join(sorted(set(group.peak_mem_source) - {"-"})) or "-"
        figs = "".join([
            _figure(figures.memory_figure(rows), f"Peak memory per method, {heading}"),
            _figure(figures.pareto_figure(rows), f"Memory vs accuracy, {heading}"),
            _figure(figures.loss_figure(rows, records), f"Loss curves with divergence events, {heading}"),
            _figure(figures.step_time_figure(rows, records), f"Step time per method, {heading}"),
        ])
        sections.append(f"<section><h2>{html.escape(heading)}</h2>{_table(group)}"
                        f"<p>Peak memory source: {html.escape(sources)}. {html.escape(FOOTNOTE)}</p>"
                        f'<div class="figures">{figs}</div></section>')
    body = "".join(sections) or "<p>No records found.</p>"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")
