"""``sipdo verify --report``: one self-contained HTML page of a verdict file (Plotly, offline).

The plotly.js bundle is embedded once, so the page opens without a network.
Charts: verdicts by status, why rows did not pass, the mutation-score
distribution (``tasks`` mode), verification time per row, pass@k
(``solutions`` mode). The per-row times are read back from the verdict file
(streamed; one float per row).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.verifiers.summary import read_verdicts


def _figures(summary: dict[str, Any], seconds: list[float]) -> list[Any]:
    import plotly.graph_objects as go

    figs = []
    statuses = summary["statuses"]
    figs.append(
        go.Figure(
            go.Bar(x=list(statuses), y=list(statuses.values())),
            layout_title_text="Verdicts by status",
        )
    )
    if summary["rejected_by"]:
        reasons = summary["rejected_by"]
        figs.append(
            go.Figure(
                go.Bar(x=list(reasons.values()), y=list(reasons), orientation="h"),
                layout_title_text="Why rows did not pass (first failing check)",
            )
        )
    hist = summary["mutation_score_histogram"]
    if any(hist.values()):
        figs.append(
            go.Figure(
                go.Bar(x=list(hist), y=list(hist.values())),
                layout_title_text="Mutation score (killed / distinguishable mutants)",
            )
        )
    if seconds:
        figs.append(
            go.Figure(
                go.Histogram(x=seconds, nbinsx=40),
                layout_title_text="Verification time per row (s)",
            )
        )
    passk = {k: v for k, v in summary.items() if k.startswith("pass@")}
    if passk:
        figs.append(
            go.Figure(
                go.Bar(x=list(passk), y=list(passk.values())),
                layout_title_text=f"pass@k over {summary['tasks_graded']} tasks",
            )
        )
    return figs


def render_report(verdicts: Path, summary: dict[str, Any]) -> str:
    """The HTML text of the report."""
    try:
        import plotly.io as pio
    except ImportError as exc:
        raise ConfigurationError("--report needs plotly: pip install 'sipdo[report]'") from exc
    seconds = [
        float((r.get("timings") or {}).get("verify_s", 0.0)) for r in read_verdicts(verdicts)
    ]
    parts = [
        pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0))
        for i, fig in enumerate(_figures(summary, seconds))
    ]
    table = html.escape(json.dumps(summary, indent=2))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>sipdo verify: {html.escape(verdicts.name)}</title></head><body>"
        f"<h1>sipdo verify: {html.escape(str(verdicts))}</h1>"
        f"<p>{summary['rows']} rows, {summary['passed']} passed.</p>"
        + "".join(f"<div>{p}</div>" for p in parts)
        + f"<h2>Summary</h2><pre>{table}</pre></body></html>"
    )


def write_report(verdicts: Path, path: Path, summary: dict[str, Any]) -> None:
    text = render_report(verdicts, summary)
    try:
        path.write_text(text, "utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc}") from exc
