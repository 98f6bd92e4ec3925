"""``sipdo runs``, ``sipdo show RUN_ID`` and ``sipdo export``: read the run store."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from sipdo.cli.common import console
from sipdo.cli.owner import shown_status
from sipdo.errors import ConfigurationError
from sipdo.store import RunStore
from sipdo.store.records import PromptVersionRecord


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "-" if value is None else value.strftime(fmt)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def runs_table(store: RunStore, width: int | None = None) -> Table | Text:
    """Every run, newest first, readable at ``width`` columns (default: the console's).

    Below 100 columns: no start time, one ``tasks`` column (accepted/rejected), no
    vertical rules, and the stop reason cut to 60 characters and wrapped (``sipdo
    show`` has it whole); headers are never cut.
    """
    records = store.list_runs()
    if not records:
        return Text("no runs yet (start one with `sipdo run --prompt ...`)")
    wide = (width or console.width) >= 100
    if wide:
        table = Table(title="runs")
        names = ["run", "status", "started", "prompts", "accepted", "rejected", "best"]
    else:
        table = Table(
            title="runs",
            caption="tasks: accepted/rejected",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        names = ["run", "status", "prompts", "tasks", "best"]
    for name in names:
        table.add_column(name, no_wrap=True, min_width=len(name))
    table.add_column("stop", overflow="fold", min_width=4, ratio=1)
    for r in records:
        status = shown_status(r)
        style = {"finished": "green", "failed": "red", "running": "yellow"}.get(status, "")
        stop = r.stop_reason or "-"
        if wide:
            counts = [_when(r.created_at, "%m-%d %H:%M"), str(r.prompt_versions)]
            counts += [str(r.accepted_tasks), str(r.rejected_tasks)]
        else:
            counts = [str(r.prompt_versions), f"{r.accepted_tasks}/{r.rejected_tasks}"]
            stop = stop if len(stop) <= 60 else stop[:59] + "…"
        table.add_row(
            Text(r.run_id), Text(status, style), *counts, _score(r.best_score), Text(stop)
        )
    return table


def show_run(store: RunStore, run_id: str) -> Group:
    """A run: header, prompt lineage with diffs, task table, model usage."""
    run = store.get_run(run_id)
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    header.add_row("run", Text(run.run_id))
    header.add_row(
        "status", Text(f"{shown_status(run)} ({run.stop_reason or 'no stop reason yet'})")
    )
    header.add_row("started / finished", f"{_when(run.created_at)} / {_when(run.finished_at)}")
    header.add_row("config", Text(json.dumps(run.config, default=str)[:400]))
    parts: list[Any] = [header, Text("\nprompt lineage", style="bold underline")]
    for p in store.prompt_lineage(run_id):
        parts.append(_version_panel(p))
    parts.append(_tasks_table(store, run_id))
    usage = store.usage(run_id)
    if usage:
        table = Table(title="model usage")
        for name in ("role", "model", "calls", "input tok.", "output tok.", "latency s"):
            table.add_column(name)
        for u in usage:
            table.add_row(
                Text(u.role),
                Text(u.model),
                str(u.calls),
                str(u.input_tokens),
                str(u.output_tokens),
                f"{u.latency_s:.1f}",
            )
        parts.append(table)
    if run.best_prompt:
        parts.append(Panel(Text(run.best_prompt), title="best prompt", expand=False))
    return Group(*parts)


def _version_panel(p: PromptVersionRecord) -> Panel:
    """One prompt version: its parents and operator, the decision, flags, the diff."""
    verdict = Text("promoted", "green") if p.accepted else Text("not promoted", "red")
    parents = " + ".join(p.parent_ids) or "start"
    title = Text.assemble(
        f"{p.version_id} <- {parents}  [{p.operator}]  iteration {p.iteration}  ", verdict
    )
    body: list[Any] = []
    if p.scores:
        body.append(Text("scores: " + ", ".join(f"{k}={v:g}" for k, v in p.scores.items())))
    decision = p.meta.get("decision") or {}
    if decision.get("policy"):
        stats = ", ".join(f"{k}={v:g}" for k, v in (decision.get("stats") or {}).items())
        body.append(
            Text(
                f"{decision['policy']} policy: {decision.get('reason', '')}"
                + (f" ({stats})" if stats else "")
            )
        )
    for key, label in (("rating", "rating"), ("front", "Pareto front")):
        if key in p.meta:
            body.append(Text(f"{label}: {p.meta[key]}"))
    for flag in p.meta.get("flags", []):
        body.append(Text(f"flag: {flag}", "yellow"))
    shown = p.meta.get("demonstrations") or []
    if shown:
        listed = ", ".join(f"{d.get('id')} (task {d.get('task_id')})" for d in shown)
        body.append(Text(f"demonstrations: {listed}"))
    for why in p.meta.get("refused", []):
        body.append(Text(f"refused: {why}", "red"))
    if p.feedback:
        body.append(Text("feedback: " + p.feedback[:500]))
    if len(p.components) > 1:
        body.append(Text("components: " + ", ".join(p.components)))
    body.append(Syntax(p.diff or "(no change)", "diff", word_wrap=True))
    return Panel(Group(*body), title=title, title_align="left")


def _tasks_table(store: RunStore, run_id: str) -> Table:
    table = Table(title="tasks")
    for name in ("task", "status", "diff.", "weakness", "reason", "failed at", "solved at", "#v"):
        table.add_column(name, overflow="fold")
    for t in store.tasks(run_id):
        style = {"accepted": "green", "rejected": "red", "seed": "cyan"}.get(t.status, "")
        table.add_row(
            Text(t.task_id),
            Text(t.status, style),
            str(t.difficulty),
            Text(t.weakness[:40]),
            Text(t.reason[:80]),
            Text(t.first_failed_version or "-"),
            Text(t.first_solved_version or "-"),
            str(len(t.verdicts)),
        )
    return table


def write_jsonl(records: Iterable[dict[str, Any]], output: Path | None) -> int:
    """Write JSONL to ``output`` (atomically: all or nothing) or stdout; return the count."""
    lines = [json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records]
    if output is None:
        for line in lines:
            console.file.write(line)
        console.file.flush()
        return len(lines)
    target = output.expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {output}: {exc}") from exc
    return len(lines)
