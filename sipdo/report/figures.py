"""The report's Plotly figures, drawn from ``ReportData`` alone (pure: no I/O).

Every figure is returned as plain JSON data (``{"data": [...], "layout": {...}}``)
ready for ``Plotly.newPlot``. Plotly renders a small HTML subset inside labels and
hover text, so every string that reaches a figure passes through ``esc`` first:
model-written text shows as text, never as markup.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from sipdo.report.data import ReportData, VersionView

PROMOTED, REJECTED, INITIAL, SEED, NEUTRAL = "#2a9d4b", "#d1495b", "#3b6fb6", "#7a7a7a", "#e9a23b"
Figure = dict[str, Any]


def esc(value: object, limit: int = 300) -> str:
    """``value`` as plain text safe inside Plotly labels (escaped, shortened)."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True).replace("\n", "<br>")


def _fig(data: list[dict[str, Any]], layout: dict[str, Any]) -> Figure:
    import plotly.graph_objects as go

    # Plotly validates every property here: a typo fails loudly instead of not drawing.
    built = go.Figure(data=data, layout={"template": "plotly_white", **layout})
    return dict(built.to_plotly_json())


def _version_score(v: VersionView) -> float | None:
    return v.passed / v.graded if v.graded else None


def score_figure(data: ReportData) -> Figure:
    """Pass rate per iteration: every candidate, the promoted line, held-out when recorded."""
    traces: list[dict[str, Any]] = []
    for promoted, name, color in ((True, "promoted", PROMOTED), (False, "not promoted", REJECTED)):
        points = [
            v for v in data.versions if v.promoted == promoted and _version_score(v) is not None
        ]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"candidate, {name}",
                "x": [v.iteration for v in points],
                "y": [_version_score(v) for v in points],
                "marker": {"color": color, "size": 11, "line": {"width": 1, "color": "#fff"}},
                "text": [
                    esc(f"{v.version_id}: {v.passed}/{v.graded} training tasks; {v.reason}")
                    for v in points
                ],
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    incumbent_x, incumbent_y = _incumbent_curve(data)
    traces.append(
        {
            "type": "scatter",
            "mode": "lines",
            "line": {"shape": "hv", "color": PROMOTED, "width": 2},
            "name": "current prompt (training tasks)",
            "x": incumbent_x,
            "y": incumbent_y,
            "hoverinfo": "skip",
        }
    )
    placed = [p for p in data.heldout if p.iteration is not None]
    if placed:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "held-out pass@1",
                "x": [p.iteration for p in placed],
                "y": [p.score for p in placed],
                "line": {"color": INITIAL, "dash": "dash", "width": 2},
                "marker": {"symbol": "diamond", "size": 10},
                "text": [
                    esc(
                        f"{p.version_id}: "
                        + (f"{p.passed}/{p.total}" if p.total else f"{p.score:.3f}")
                        + f" held-out {p.benchmark} ({p.source})"
                    )
                    for p in placed
                ],
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    return _fig(
        traces,
        {
            "title": {"text": "Score per iteration"},
            "xaxis": {"title": {"text": "iteration"}, "dtick": 1},
            "yaxis": {"title": {"text": "pass rate"}, "range": [-0.05, 1.05]},
            "height": 380,
            "legend": {"orientation": "h", "y": -0.2},
        },
    )


def _incumbent_curve(data: ReportData) -> tuple[list[int], list[float | None]]:
    """Per iteration, the training pass rate of the last version promoted by then."""
    if not data.versions:
        return [], []
    last = max(
        [v.iteration for v in data.versions]
        + [t.iteration for t in data.tasks if t.iteration is not None]
        + list(data.requested_difficulty)
    )
    xs: list[int] = []
    ys: list[float | None] = []
    current: VersionView | None = None
    for iteration in range(0, last + 1):
        for v in data.versions:
            if v.iteration == iteration and v.promoted:
                current = v
        xs.append(iteration)
        ys.append(_version_score(current) if current is not None else None)
    return xs, ys


def difficulty_figure(data: ReportData) -> Figure:
    """Difficulty per iteration: each task (seed / accepted / rejected) and the level asked."""
    traces: list[dict[str, Any]] = []
    for status, color, symbol in (
        ("seed", SEED, "circle"),
        ("accepted", PROMOTED, "circle"),
        ("rejected", REJECTED, "x"),
    ):
        tasks = [t for t in data.tasks if t.status == status and t.iteration is not None]
        if not tasks:
            continue
        stacked: Counter[tuple[int, int]] = Counter()
        offsets = []
        for t in tasks:
            key = (t.iteration or 0, t.difficulty)
            offsets.append(0.08 * stacked[key])  # spread tasks that share a point
            stacked[key] += 1
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{status} tasks",
                "x": [(t.iteration or 0) + o for t, o in zip(tasks, offsets, strict=True)],
                "y": [t.difficulty for t in tasks],
                "marker": {"color": color, "symbol": symbol, "size": 10},
                "text": [esc(f"{t.task_id} ({t.weakness or 'no weakness given'})") for t in tasks],
                "hovertemplate": "%{text}<br>difficulty %{y}<extra></extra>",
            }
        )
    accepted_max: dict[int, int] = {}
    for t in data.tasks:
        if t.status in ("seed", "accepted") and t.iteration is not None:
            accepted_max[t.iteration] = max(accepted_max.get(t.iteration, 0), t.difficulty)
    if accepted_max:
        xs = sorted(accepted_max)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "hardest verified task",
                "x": xs,
                "y": [accepted_max[x] for x in xs],
                "line": {"color": PROMOTED, "width": 2},
            }
        )
    if data.requested_difficulty:
        xs = sorted(data.requested_difficulty)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "level asked of the generator",
                "x": xs,
                "y": [data.requested_difficulty[x] for x in xs],
                "line": {"color": NEUTRAL, "dash": "dot", "width": 2},
            }
        )
    return _fig(
        traces,
        {
            "title": {"text": "Difficulty curve"},
            "xaxis": {"title": {"text": "iteration (0: seeds)"}, "dtick": 1},
            "yaxis": {"title": {"text": "difficulty"}, "dtick": 1},
            "height": 340,
            "legend": {"orientation": "h", "y": -0.25},
        },
    )


def tasks_figure(data: ReportData) -> Figure:
    """Generated tasks per iteration, accepted vs rejected."""
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for t in data.tasks:
        if t.status != "seed":
            counts[t.status][t.iteration if t.iteration is not None else -1] += 1
    iterations = sorted({i for c in counts.values() for i in c})
    label: Callable[[int], str] = lambda i: "unknown" if i < 0 else str(i)  # noqa: E731
    traces = [
        {
            "type": "bar",
            "name": status,
            "x": [label(i) for i in iterations],
            "y": [counts[status][i] for i in iterations],
            "marker": {"color": color},
        }
        for status, color in (("accepted", PROMOTED), ("rejected", REJECTED))
    ]
    return _fig(
        traces,
        {
            "title": {"text": "Generated tasks: accepted vs rejected by the verifier"},
            "barmode": "stack",
            "xaxis": {"title": {"text": "iteration"}, "type": "category"},
            "yaxis": {"title": {"text": "tasks"}, "dtick": 1},
            "height": 320,
        },
    )


def heatmap_figure(data: ReportData) -> Figure:
    """The score table: prompt versions (rows) x training tasks (columns)."""
    versions = [v.version_id for v in data.versions if v.version_id in data.score_table]
    versions += [vid for vid in data.score_table if vid not in versions]
    known = [t.task_id for t in data.tasks]
    seen = {tid for row in data.score_table.values() for tid in row}
    task_ids = [t for t in known if t in seen] + sorted(seen - set(known))
    z: list[list[float | None]] = []
    hover: list[list[str]] = []
    for vid in versions:
        row = data.score_table.get(vid, {})
        z.append([_cell_score(row.get(tid)) for tid in task_ids])
        hover.append(
            [esc(f"{vid} on {tid}: " + _cell_text(row.get(tid)), limit=400) for tid in task_ids]
        )
    trace = {
        "type": "heatmap",
        "x": [esc(t, 60) for t in task_ids],
        "y": [esc(v, 60) for v in versions],
        "z": z,
        "zmin": 0,
        "zmax": 1,
        "colorscale": [[0, REJECTED], [0.5, "#f4e3b2"], [1, PROMOTED]],
        "xgap": 2,
        "ygap": 2,
        "text": hover,
        "hovertemplate": "%{text}<extra></extra>",
        "colorbar": {"title": {"text": "score"}},
    }
    return _fig(
        [trace],
        {
            "title": {"text": "Score table: prompt versions x training tasks (blank: not graded)"},
            "xaxis": {"tickangle": -35, "automargin": True},
            "yaxis": {"automargin": True, "autorange": "reversed"},
            "height": max(260, 60 + 34 * len(versions)),
        },
    )


def _cell_score(cell: Any) -> float | None:
    if not isinstance(cell, dict):
        return None
    score = cell.get("score")
    return float(score) if isinstance(score, int | float) else float(bool(cell.get("passed")))


def _cell_text(cell: Any) -> str:
    if not isinstance(cell, dict):
        return "not graded"
    return ("passed" if cell.get("passed") else "failed") + f" (score {_cell_score(cell):.2f})"


def cost_figure(data: ReportData) -> Figure:
    """Model calls, tokens and latency per role, side by side."""
    from plotly.subplots import make_subplots

    roles = [esc(c.role, 40) for c in data.costs]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("calls", "tokens", "latency (s)"))
    fig.add_bar(
        x=roles, y=[c.calls for c in data.costs], name="calls", row=1, col=1, marker_color=INITIAL
    )
    fig.add_bar(
        x=roles,
        y=[c.input_tokens for c in data.costs],
        name="input tokens",
        row=1,
        col=2,
        marker_color=NEUTRAL,
    )
    fig.add_bar(
        x=roles,
        y=[c.output_tokens for c in data.costs],
        name="output tokens",
        row=1,
        col=2,
        marker_color=SEED,
    )
    fig.add_bar(
        x=roles,
        y=[round(c.latency_s, 2) for c in data.costs],
        name="latency s",
        row=1,
        col=3,
        marker_color=REJECTED,
    )
    fig.update_layout(
        template="plotly_white",
        barmode="stack",
        height=320,
        title={"text": "Cost per role"},
        legend={"orientation": "h", "y": -0.25},
    )
    return dict(fig.to_plotly_json())


def lineage_figure(data: ReportData) -> Figure:
    """The prompt lineage as a tree: x is the iteration, an edge joins parent and child."""
    slots: Counter[int] = Counter()
    pos: dict[str, tuple[float, float]] = {}
    for v in data.versions:
        pos[v.version_id] = (v.iteration, -slots[v.iteration])
        slots[v.iteration] += 1
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for v in data.versions:
        for parent in v.parent_ids:
            if parent in pos:
                (x0, y0), (x1, y1) = pos[parent], pos[v.version_id]
                edge_x += [x0, x1, None]
                edge_y += [y0, y1, None]
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": edge_x,
            "y": edge_y,
            "line": {"color": "#9aa5b1", "width": 1.5},
            "hoverinfo": "skip",
            "showlegend": False,
        }
    ]
    groups = (
        ("initial", INITIAL, lambda v: not v.parent_ids),
        ("promoted", PROMOTED, lambda v: bool(v.parent_ids) and v.promoted),
        ("not promoted", REJECTED, lambda v: bool(v.parent_ids) and not v.promoted),
    )
    for name, color, member in groups:
        nodes = [v for v in data.versions if member(v)]
        if not nodes:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": name,
                "x": [pos[v.version_id][0] for v in nodes],
                "y": [pos[v.version_id][1] for v in nodes],
                "marker": {"color": color, "size": 18, "line": {"width": 1, "color": "#fff"}},
                "text": [esc(v.version_id, 40) for v in nodes],
                "textposition": "top center",
                "customdata": [
                    esc(
                        f"{v.operator} of {' + '.join(v.parent_ids) or 'nothing'}; "
                        + (f"{v.passed}/{v.graded} training tasks; " if v.graded else "")
                        + v.reason,
                        limit=400,
                    )
                    for v in nodes
                ],
                "hovertemplate": "%{text}<br>%{customdata}<extra></extra>",
            }
        )
    depth = max(slots.values(), default=1)
    return _fig(
        traces,
        {
            "title": {"text": "Prompt lineage (click a version below for its diff)"},
            "xaxis": {"title": {"text": "iteration"}, "dtick": 1, "zeroline": False},
            "yaxis": {"visible": False, "range": [-depth + 0.4, 0.8]},
            "height": max(260, 90 * depth + 120),
            "legend": {"orientation": "h", "y": -0.2},
        },
    )


def all_figures(data: ReportData) -> dict[str, Figure]:
    """Every figure of the report, by the id of the element it is drawn in."""
    figures = {
        "fig-score": score_figure(data),
        "fig-difficulty": difficulty_figure(data),
        "fig-tasks": tasks_figure(data),
        "fig-lineage": lineage_figure(data),
    }
    if data.score_table:
        figures["fig-heatmap"] = heatmap_figure(data)
    if data.costs:
        figures["fig-cost"] = cost_figure(data)
    return figures
