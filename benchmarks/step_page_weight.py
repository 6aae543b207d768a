"""First-load weight of the lab step pages: every byte the browser receives, compressed, cold cache.

Budget (issue 3): a step page's first load is at most 1.5 MB compressed, scripts included. The console
runs as `make run` starts it (DEBUG off: hashed, precompressed static files served by ServeStatic);
Chromium, through Playwright, logs in as a new student, then opens each step page in a fresh context
(empty cache, same session) and adds up the encoded body sizes (and headers) of all responses.
Run: .venv/bin/python benchmarks/step_page_weight.py   (exit status 1 when a page is over budget)

plotly.js (the traffic chart's library, from the installed plotly package) is loaded by the page after its
load event, so it does not hold up the first paint; it is counted all the same, and shown apart with the
times (ms after navigation start) of the load event and of plotly.js arriving.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from benchmarks._console import RunningConsole, running_console  # noqa: E402
from labsteps.content import load_steps  # noqa: E402

BUDGET = 1_500_000
LAZY = "/vendor/plotly/"  # loaded after the load event
TIMINGS: dict[str, dict] = {}
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAUNCH_ARGS += ["--disable-component-update", "--disable-sync", "--no-first-run"]


class Resource(NamedTuple):
    path: str
    kind: str
    encoding: str
    body: int  # bytes on the wire (compressed when encoded)
    headers: int


def log_in(browser: Browser, console: RunningConsole) -> dict:
    """The storage state (session cookie) of a new student who has logged in once."""
    username, password = console.new_student()
    context = browser.new_context()
    page = context.new_page()
    page.goto(console.url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(console.url + "/lab/")
    state = context.storage_state()
    context.close()
    return state


def first_load(browser: Browser, state: dict, url: str) -> list[Resource]:
    """Every response of a cold load of `url` until the page is live (websocket open, network idle)."""
    context = browser.new_context(storage_state=state)
    page = context.new_page()
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto(url, wait_until="networkidle")
    page.wait_for_selector('#connection[data-state="live"]')
    TIMINGS[url] = page.evaluate(
        """() => {
            const nav = performance.getEntriesByType("navigation")[0];
            const plotly = performance.getEntriesByType("resource").find((r) => r.name.includes("/vendor/plotly/"));
            return {load: nav.loadEventEnd, plotly: plotly ? plotly.responseEnd : null};
        }"""
    )
    resources = []
    for request in finished:
        sizes = request.sizes()
        response = request.response()
        encoding = (response.header_value("content-encoding") if response else None) or "-"
        resources.append(
            Resource(
                urlsplit(request.url).path,
                request.resource_type,
                encoding,
                sizes["responseBodySize"],
                sizes["responseHeadersSize"],
            )
        )
    context.close()
    return resources


def main() -> int:
    steps = load_steps()
    with tempfile.TemporaryDirectory() as tmp, running_console(Path(tmp)) as console, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        state = log_in(browser, console)
        loads = {step.id: first_load(browser, state, f"{console.url}/lab/{step.id}/") for step in steps}
        console_url = console.url
        browser.close()

    totals = {step_id: sum(r.body + r.headers for r in resources) for step_id, resources in loads.items()}
    heaviest = max(totals, key=totals.get)
    print(f"first load of /lab/{heaviest}/ (the heaviest step page), cold cache:")
    print(f"{'resource':<52} {'type':<11} {'encoding':<9} {'body B':>9} {'headers B':>10}")
    for r in loads[heaviest]:
        print(f"{r.path[:52]:<52} {r.kind:<11} {r.encoding:<9} {r.body:>9,} {r.headers:>10,}")
    body = sum(r.body for r in loads[heaviest])
    scripts = sum(r.body for r in loads[heaviest] if r.kind == "script")
    print(f"bodies {body:,} B (scripts {scripts:,} B); with headers {totals[heaviest]:,} B; budget {BUDGET:,} B")
    lazy = sum(r.body + r.headers for r in loads[heaviest] if LAZY in r.path)
    timing = TIMINGS[f"{console_url}/lab/{heaviest}/"]
    plotly_at = f"{timing['plotly']:.0f} ms" if timing["plotly"] is not None else "not loaded"
    print(
        f"of which plotly.js (loaded after the load event) {lazy:,} B; the page without it {totals[heaviest] - lazy:,} B"
    )
    print(f"load event at {timing['load']:.0f} ms, plotly.js received at {plotly_at} (after navigation start)")
    print("every step page, bytes with headers: " + ", ".join(f"{k} {v:,}" for k, v in totals.items()))
    over = [step_id for step_id, total in totals.items() if total > BUDGET]
    if over:
        print(f"OVER BUDGET: {', '.join(over)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
