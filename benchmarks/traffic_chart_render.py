"""Cost of one live update of the traffic chart in Chromium, with the chart full (10 minutes of windows).

Target (issue 5, freshness): a window is visible in the browser within window + 300 ms (p95); the
chart's share of that is one draw per window, so a draw should stay well under 100 ms, and the page's
CPU for a 1 window/s stream a small fraction of one core.

The page is static/js/traffic-chart.js with plotly.js from the installed plotly package, served from a
loopback HTTP server; the panel is fed synthetic windows shaped exactly like the worker's (three streams,
histograms made by traffic/windows.py), first 600 as history, then one at a time as live windows, and
each live window is drawn at once (`panel.draw()`, what the next animation frame would do). Printed:
wall time per draw (median, p95, max) and Chromium's CPU time per draw (all its processes, psutil).
Run: .venv/bin/python benchmarks/traffic_chart_render.py [--live 60]   (TRAFFIC_PLOTLY_JS: another bundle)
"""

from __future__ import annotations

import argparse
import http.server
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from traffic.finders import FILE, package_data  # noqa: E402
from traffic.windows import StreamWindow  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAUNCH_ARGS += ["--disable-component-update", "--disable-sync", "--no-first-run"]
HISTORY = 600
STREAMS = {"clear": 5, "clear (user: test)": 5, "transfer": 1}
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="traffic.css"><script src="live.js"></script><script src="traffic-chart.js"></script>
</head><body style="width: 700px">
<section class="traffic" id="traffic" data-plotly-src="plotly.min.js">
  <span class="connection" data-role="connection"><span class="dot"></span><span class="label"></span>
  <button hidden>Retry</button></span>
  <p data-role="status"></p><div data-role="error" hidden></div><p data-role="summary"></p>
  <div class="traffic-chart" data-role="chart"></div><p data-role="note" hidden></p><div data-role="streams"></div>
</section></body></html>"""


def window(seq: int, start: float, rng: random.Random) -> dict:
    streams = {}
    for name, rate in STREAMS.items():
        w = StreamWindow(start=start, end=start + 1.0, rate=rate, sent=rate)
        for _ in range(rate):
            code = "500" if rng.random() < 0.1 else "200"
            latency = int(rng.lognormvariate(8.3, 0.6))  # µs, a few ms
            w.record_result(code, latency, latency)
        streams[name] = w.to_json()
    return {
        "seq": seq,
        "type": "window",
        "run": "0123456789abcdef",
        "start": start,
        "end": start + 1.0,
        "streams": streams,
    }


def chromium_cpu() -> float:
    """CPU seconds of the Chromium processes this benchmark started (descendants of this process)."""
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            if "chrom" in proc.name().lower():
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=60, help="live windows drawn and timed")
    args = parser.parse_args()
    rng = random.Random(1)
    now = time.time() - HISTORY - args.live
    history = [window(i + 1, now + i, rng) for i in range(HISTORY)]
    live = [window(HISTORY + i + 1, now + HISTORY + i, rng) for i in range(args.live)]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "index.html").write_text(PAGE)
        for name in ("js/live.js", "js/traffic-chart.js", "css/traffic.css"):
            shutil.copy(REPO / "static" / name, root / Path(name).name)
        shutil.copy(os.environ.get("TRAFFIC_PLOTLY_JS") or package_data() / FILE, root / FILE)

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def log_message(self, *a) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
                page = browser.new_page(viewport={"width": 800, "height": 600})
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
                page.evaluate(
                    """() => { window.panel = MeshTraffic.mount(document.getElementById("traffic"),
                        {runId: "0123456789abcdef", wsPath: "/no-socket/{run}/", staleSeconds: 1e9}); }"""
                )
                page.wait_for_function("() => window.panel.plotly !== null", timeout=30_000)
                page.evaluate(
                    "(w) => { panel.receive({type: 'history', state: 'running', windows: w}); panel.draw(); }",
                    history,
                )
                cpu0 = chromium_cpu()
                walls = []
                for w in live:
                    walls.append(
                        page.evaluate(
                            "(w) => { panel.receive(w); const t = performance.now(); panel.draw(); "
                            "return performance.now() - t; }",
                            w,
                        )
                    )
                cpu = chromium_cpu() - cpu0
                points = page.evaluate(
                    "() => document.querySelector('[data-role=chart]').data.find((t) => t.name === 'p50 latency').x.length"
                )
                browser.close()
        finally:
            server.shutdown()

    walls.sort()
    p95 = walls[max(0, round(0.95 * len(walls)) - 1)]
    print(f"traffic chart, {points} windows shown (10 min of 1 s windows, {len(STREAMS)} streams), {len(walls)} draws:")
    print(f"  wall per draw: median {statistics.median(walls):.1f} ms, p95 {p95:.1f} ms, max {walls[-1]:.1f} ms")
    print(f"  Chromium CPU (all processes) per draw: {1000 * cpu / len(walls):.1f} ms")
    print("  (2-core machine shared with other work: figures are noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
