"""Open a page in a real headless Chromium over the DevTools protocol and look at it.

A small synchronous CDP client on ``websockets`` (already a dependency of
langgraph): start Debian's ``chromium`` with a private profile and
``--remote-debugging-port=0``, attach to its page, record console errors,
uncaught exceptions, log errors (CSP violations, failed loads) and every network
request, load the file, wait until the report says its plots are drawn, query the
DOM and take a screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_binary() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageVisit:
    """What the browser saw."""

    ready: str | None  # data-plots-ready of <body> (the number of plots drawn)
    plot_error: str | None
    counts: dict[str, int]
    text: str
    pwned: Any  # window.__pwned: set only if injected script ran
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""


class _Cdp:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 120.0, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result") or {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                message = json.loads(self.ws.recv(timeout=max(0.05, deadline - time.monotonic())))
            except TimeoutError:
                return
            if "method" in message:
                self.events.append(message)


COUNTS_JS = """JSON.stringify({
  plots: document.querySelectorAll('.js-plotly-plot').length,
  main_svgs: document.querySelectorAll('svg.main-svg').length,
  scatter_points: document.querySelectorAll('.scatterlayer .point').length,
  bars: document.querySelectorAll('.barlayer .point').length,
  heatmaps: document.querySelectorAll('.heatmaplayer image, .heatmaplayer .hm').length,
  versions: document.querySelectorAll('.version').length,
  scripts: document.querySelectorAll('script').length,
  injected_imgs: document.querySelectorAll('img').length
})"""


def visit(
    page: Path, *, width: int = 1280, timeout: float = 300.0, screenshot_height: int | None = None
) -> PageVisit:
    """Load ``page`` in headless Chromium and report what it saw (see ``PageVisit``)."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("no chromium binary (scripts/setup.sh installs Debian's chromium)")
    profile = Path(tempfile.mkdtemp(prefix="sipdo-chromium-"))
    args = [
        binary,
        "--headless=new",
        "--no-sandbox",  # root in a container: Chromium's own sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={width},1000",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return _drive(proc, profile, page, width, timeout, screenshot_height)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _drive(
    proc: subprocess.Popen[bytes],
    profile: Path,
    page: Path,
    width: int,
    timeout: float,
    screenshot_height: int | None,
) -> PageVisit:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chromium did not start (exit {proc.poll()})")
        time.sleep(0.1)
    port = int(port_file.read_text().splitlines()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
        targets = json.load(resp)
    target = next(t for t in targets if t.get("type") == "page")
    with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
        cdp = _Cdp(ws)
        for domain in ("Runtime", "Log", "Network", "Page"):
            cdp.call(f"{domain}.enable")
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=1000,
            deviceScaleFactor=1,
            mobile=False,
        )
        cdp.call("Page.navigate", url=page.resolve().as_uri())
        ready = error = None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = cdp.evaluate(
                "document.body ? [document.body.getAttribute('data-plots-ready'),"
                " document.body.getAttribute('data-plots-error')] : [null, null]"
            )
            ready, error = state
            if ready is not None or error is not None:
                break
            cdp.drain(0.25)
        cdp.drain(0.5)  # late console messages
        counts = json.loads(cdp.evaluate(COUNTS_JS))
        text = cdp.evaluate("document.body.innerText")
        pwned = cdp.evaluate("window.__pwned === undefined ? null : String(window.__pwned)")
        height = int(cdp.evaluate("document.documentElement.scrollHeight"))
        shot_height = min(height, screenshot_height) if screenshot_height else height
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=shot_height,
            deviceScaleFactor=1,
            mobile=False,
        )
        cdp.drain(0.5)
        shot = cdp.call("Page.captureScreenshot", format="png", timeout=60)
        console_errors, requests = _read_events(cdp.events)
    return PageVisit(
        ready=ready,
        plot_error=error,
        counts=counts,
        text=text,
        pwned=pwned,
        console_errors=console_errors,
        requests=requests,
        screenshot=base64.b64decode(shot["data"]),
    )


def _read_events(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    requests: list[str] = []
    for event in events:
        method, params = event["method"], event.get("params") or {}
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args") or []
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails") or {}
            errors.append(str((details.get("exception") or {}).get("description", details)))
        elif method == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
            errors.append(str(params["entry"].get("text")))
        elif method == "Network.requestWillBeSent":
            requests.append(str((params.get("request") or {}).get("url")))
    return errors, requests


if __name__ == "__main__":  # python -m tests.report.chromium PAGE.html SHOT.png [HEIGHT]
    import sys

    seen = visit(
        Path(sys.argv[1]), screenshot_height=int(sys.argv[3]) if len(sys.argv) > 3 else None
    )
    Path(sys.argv[2]).write_bytes(seen.screenshot)
    print(json.dumps({**seen.counts, "ready": seen.ready, "errors": seen.console_errors}))
    os._exit(0 if seen.ready and not seen.console_errors else 1)
