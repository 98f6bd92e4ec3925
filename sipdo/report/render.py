"""Render ``ReportData`` as one self-contained HTML file.

The page carries plotly.js inline (no network at view time) and the figures as a
JSON block. Two escaping rules keep model-written text inert: the Jinja template
autoescapes everything it prints, and JSON placed inside a ``<script>`` element
has ``<``, ``>`` and ``&`` written as ``\\u`` escapes, so no string can close the
element or open another one.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.report.data import ReportData, as_dict
from sipdo.report.figures import all_figures

_SCRIPT_SAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe to place verbatim inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in _SCRIPT_SAFE.items():
        text = text.replace(char, escaped)
    return text


def plotly_js() -> str:
    """The plotly.js bundle shipped with the ``plotly`` package (inlined into the page)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise ConfigurationError(
            "the run report needs plotly: pip install 'sipdo[report]'"
        ) from exc
    return str(get_plotlyjs()).replace("</script", "<\\/script")


def render_html(data: ReportData) -> str:
    """The report page for ``data``."""
    try:
        import jinja2
        from markupsafe import Markup
    except ImportError as exc:
        raise ConfigurationError(
            "the run report needs jinja2: pip install 'sipdo[report]'"
        ) from exc
    source = (resources.files("sipdo.report") / "templates" / "report.html.j2").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    figures = all_figures(data)
    template = env.from_string(source)
    return template.render(
        d=data,
        run=data.run,
        config=_config_rows(data.run.config, [(c.role, c.models) for c in data.costs]),
        summary=_summary(data),
        figure_ids=list(figures),
        figures_json=Markup(script_json(figures)),
        plotly_js=Markup(plotly_js()),
        diff_class=_diff_class,
    )


def _diff_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "meta"
    return {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "")


def _config_rows(
    config: dict[str, Any], used_models: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The settings a reader needs, from the run's stored config; the models as the
    usage records name them (the config may only know the chat model's class)."""
    cli = as_dict(config.get("cli"))
    rows: list[tuple[str, str]] = []
    for key in ("domain", "strategy", "gate"):
        value = config.get(key, cli.get(key))
        if value is not None:
            rows.append((key, str(value)))
    models = config.get("models")
    if used_models:
        rows.append(("models", ", ".join(f"{role}: {name}" for role, name in used_models)))
    elif isinstance(models, dict):
        rows.append(("models", ", ".join(f"{role}: {name}" for role, name in models.items())))
    else:
        given = {r: cli.get(k) for k, r in (("model", "learner"), ("optimizer_model", "optimizer"))}
        if any(given.values()):
            rows.append(("models", ", ".join(f"{r}: {m}" for r, m in given.items() if m)))
    budget = config.get("budget")
    if isinstance(budget, dict):
        rows.append(("budget", ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None)))
    if "seed" in cli:
        rows.append(("seed", str(cli["seed"])))
    return rows


def _summary(data: ReportData) -> dict[str, Any]:
    first = data.versions[0] if data.versions else None
    best = data.best_version
    generated = [t for t in data.tasks if t.status != "seed"]
    heldout_first = data.heldout[0] if data.heldout else None
    heldout_last = data.heldout[-1] if data.heldout else None
    return {
        "versions": len(data.versions),
        "promoted": sum(1 for v in data.versions if v.promoted and v.parent_ids),
        "seeds": sum(1 for t in data.tasks if t.status == "seed"),
        "accepted": sum(1 for t in generated if t.status == "accepted"),
        "rejected": sum(1 for t in generated if t.status == "rejected"),
        "first": first,
        "best": best,
        "heldout_first": heldout_first,
        "heldout_last": heldout_last,
        "calls": sum(c.calls for c in data.costs),
        "tokens": sum(c.input_tokens + c.output_tokens for c in data.costs),
        "latency": sum(c.latency_s for c in data.costs),
    }
