"""The report of a real run, opened in a real headless Chromium.

Debian's ``chromium`` (installed by scripts/setup.sh) loads the file over
``file://`` through the DevTools protocol: the plots must all be drawn, the
page must log no error, load nothing from the network, and none of the hostile
markup the scripted models wrote may run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report import world
from tests.report.chromium import visit
from tests.report.conftest import RecordedRun

pytestmark = pytest.mark.slow  # a real `sipdo run`, then Chromium

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_of_a_real_run_draws_every_plot_without_errors(
    hostile_run: RecordedRun, browser: None, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    done = hostile_run.sipdo(
        "report", hostile_run.run_id, "--db", hostile_run.db_url, "-o", str(page)
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {page}" in done.stderr
    assert "no held-out evaluation recorded" in done.stderr

    seen = visit(page)

    assert seen.plot_error is None
    assert seen.ready == "6"  # score, difficulty, tasks, lineage, heat map, cost
    assert seen.counts["plots"] == 6
    assert seen.counts["main_svgs"] >= 6
    assert seen.counts["scatter_points"] > 0
    assert seen.counts["bars"] > 0
    assert seen.counts["heatmaps"] >= 1
    assert seen.counts["versions"] == 4  # initial, clamp fix, BREAK (rejected), dedupe fix
    assert seen.console_errors == []
    assert all(url.startswith(("file:", "data:", "blob:")) for url in seen.requests), seen.requests
    assert seen.screenshot.startswith(PNG_MAGIC)
    assert len(seen.screenshot) > 50_000  # a drawn page, not a blank one
    (tmp_path / "report.png").write_bytes(seen.screenshot)

    text = seen.text
    assert "no-regression gate" in text  # why the BREAK candidate was not promoted
    assert "halve" in text  # the verifier's reason
    assert "AssertionError" in text
    assert "No held-out evaluation recorded" in text
    assert "Sandbox time" in text
    assert "not recorded" not in text.split("Sandbox time")[1][:40]


def test_hostile_model_text_is_shown_as_text_and_never_runs(
    hostile_run: RecordedRun, browser: None, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    done = hostile_run.sipdo(
        "report", hostile_run.run_id, "--db", hostile_run.db_url, "-o", str(page)
    )
    assert done.returncode == 0, done.stderr
    html = page.read_text("utf-8")
    assert "<script>window.__pwned" not in html
    assert "<img src=x" not in html
    assert "<svg onload" not in html

    seen = visit(page)

    assert seen.pwned is None
    assert seen.counts["scripts"] == 3  # the figures' JSON, plotly.js, the drawing script
    assert seen.counts["injected_imgs"] == 0
    # In the prompts, diffs, rationale, weakness labels, task statement and the reason.
    assert seen.text.count(world.HOSTILE) >= 8
    assert seen.console_errors == []
