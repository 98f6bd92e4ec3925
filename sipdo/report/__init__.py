"""The run report: one self-contained HTML page per run (``sipdo report RUN_ID -o FILE``).

``collect`` reads a run from the store into plain views, ``figures`` draws them
with Plotly, ``render`` writes the page (plotly.js inlined, every model-written
string escaped). ``write_report`` does all three and writes the file atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sipdo.errors import ConfigurationError
from sipdo.report.data import ReportData, collect
from sipdo.report.render import render_html
from sipdo.store import BaseRunStore

__all__ = ["ReportData", "build_report", "collect", "render_html", "write_report"]


def build_report(store: BaseRunStore, run_id: str, *, checkpoint: Path | None = None) -> str:
    """The report page of ``run_id`` as HTML text."""
    return render_html(collect(store, run_id, checkpoint=checkpoint))


def write_report(
    store: BaseRunStore, run_id: str, output: Path, *, checkpoint: Path | None = None
) -> ReportData:
    """Write the report of ``run_id`` to ``output`` (all or nothing); return what it shows."""
    data = collect(store, run_id, checkpoint=checkpoint)
    page = render_html(data)
    target = output.expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            os.fchmod(fd, 0o644)  # a page to share, not a secret (mkstemp makes it 0600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(page)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigurationError(f"cannot write the report to {output}: {exc}") from exc
    return data
