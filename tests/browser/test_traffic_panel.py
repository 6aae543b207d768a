"""The live traffic panel in Chromium on the real console: a fault shows up as 5xx beside its Apply marker.

Everything is real (the console as `make run` starts it: uvicorn, Celery, the traffic worker, Redis, the
sandbox with its mesh); the test clicks like a student and reads the plotly figure from the page. Fault
cases the console cannot be made to produce on demand (the traffic API unreachable, a traffic worker that
sends nothing) are made by the browser's own network layer: Playwright answers or relays the requests.
"""

from __future__ import annotations

import random
import re
import time

import pytest

from traffic.windows import Histogram

from .test_lab_walkthrough import FINISHED, open_step

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.browser

CHART = "#traffic [data-role=chart]"
# The y values of one named trace of the chart's figure (null until plotly has drawn it).
SERIES = """(name) => {
    const gd = document.querySelector("#traffic [data-role=chart]");
    const trace = (gd.data || []).find((t) => t.name === name);
    return trace ? {x: trace.x, y: trace.y} : null;
}"""
# True once a trace has a point above zero after time `after` (ms since the epoch, the chart's x axis).
RISEN = """([name, after]) => {
    const gd = document.querySelector("#traffic [data-role=chart]");
    const trace = (gd.data || []).find((t) => t.name === name);
    return Boolean(trace && trace.x.some((x, i) => x >= after && trace.y[i] > 0));
}"""
# A second panel on the page, read-only on a given run, as an instructor's page would mount it.
MOUNT_READ_ONLY = """(runId) => {
    const copy = document.querySelector("#traffic").cloneNode(true);
    copy.id = "read-only";
    copy.removeAttribute("data-traffic-panel");
    Object.assign(copy.dataset, {windows: "0", gaps: "0", run: "", state: "idle"});
    copy.querySelector("[data-role=streams]").replaceChildren();
    copy.querySelector("[data-role=summary]").textContent = "";
    const chart = document.createElement("div");
    chart.dataset.role = "chart";
    copy.querySelector("[data-role=chart]").replaceWith(chart);
    document.querySelector(".observe").append(copy);
    MeshTraffic.mount(copy, {runId, controls: false, follow: false, runsUrl: null, targetUrl: null});
}"""
LAB_STEPS_BEFORE_FAULTS = ("preliminaries", "deploy-splitdim", "observability", "ingress-gateway")


def apply_and_wait(page, url: str, step_id: str) -> None:
    open_step(page, url, step_id)
    page.click("#apply")
    expect(page.locator("#progress-status")).to_have_text(FINISHED, timeout=240_000)
    status = page.locator("#progress-status").inner_text()
    assert status == "Passed", f"{step_id}: {page.locator('#progress-message').inner_text()}"


def run_rates(page) -> dict[str, float]:
    """The streams of the panel's run as the traffic API reports them (name -> req/s)."""
    runs = page.evaluate("async () => (await (await fetch('/traffic/runs/')).json()).runs")
    run_id = page.locator("#traffic").get_attribute("data-run")
    run = next(r for r in runs if r["id"] == run_id)
    return {s["name"]: s["rate"] for s in run["streams"]}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_an_applied_fault_shows_as_5xx_beside_its_apply_marker(student_page, lab_console) -> None:
    page = student_page
    for step_id in LAB_STEPS_BEFORE_FAULTS:
        apply_and_wait(page, lab_console.url, step_id)

    open_step(page, lab_console.url, "fault-injection")
    panel = page.locator("#traffic")
    # The ingress step left the lab's generator running: the new page found it (GET /traffic/runs/).
    expect(panel).to_have_attribute("data-state", "running", timeout=10_000)
    first_run = panel.get_attribute("data-run")

    # Stop it, then start the lab's default streams from the panel.
    panel.locator("[data-action=stop]").click()
    expect(panel).to_have_attribute("data-state", "stopped")
    panel.locator("[data-action=start]").click()
    expect(panel.locator("[data-action=stop]")).to_be_enabled()
    started_run = panel.get_attribute("data-run")
    assert started_run != first_run
    expect(panel.locator("[data-stream]")).to_have_count(3)
    assert run_rates(page) == {"clear": 5, "clear (user: test)": 5, "transfer": 1}
    expect(panel).to_have_attribute("data-state", "running")

    # plotly arrives lazily; then 2xx bars of this run appear and no 5xx yet.
    start_ms = page.evaluate("Date.now()")
    page.wait_for_function(RISEN, arg=["2xx", start_ms - 2000], timeout=15_000)
    before = page.evaluate(SERIES, "5xx")
    assert before is not None and not any(y for y in before["y"] if y), before

    # Apply the fault: the lab's Apply also puts the generator back to its own stream (clear, 5/s),
    # which the panel follows. 10% of 5 req/s is too few to see in a second or two, so the student
    # (here the test) turns that stream up with the panel's rate control as soon as it appears.
    clicked = time.monotonic()
    clicked_ms = page.evaluate("Date.now()")
    page.click("#apply")
    expect(panel).not_to_have_attribute("data-run", started_run, timeout=10_000)
    rate_form = panel.locator("[data-stream='clear'] form")
    rate_form.locator("input").fill("60")
    rate_form.locator("button").click()
    page.wait_for_function(RISEN, arg=["5xx", clicked_ms - 1000], timeout=10_000, polling=100)
    elapsed = time.monotonic() - clicked
    print(f"5xx on the chart {elapsed:.2f} s after Apply")
    assert elapsed <= 3.0, f"5xx showed {elapsed:.2f} s after Apply"

    # The Apply is on the timeline with the step's name, as a dashed line and its label.
    layout = page.evaluate(f"document.querySelector('{CHART}').layout")
    labels = [a["text"] for a in layout.get("annotations", [])]
    assert "Apply: Inject faults" in labels, labels
    # Labels of markers a moment apart sit on different rows, so they never print over each other.
    notes = layout.get("annotations", [])
    close = [(a, b) for i, a in enumerate(notes) for b in notes[i + 1 :] if abs(a["x"] - b["x"]) < 2000]
    assert all(a["y"] != b["y"] for a, b in close), close
    lines = [s for s in layout.get("shapes", []) if s.get("type") == "line"]
    assert any(clicked_ms - 5000 <= s["x0"] <= clicked_ms + 5000 for s in lines), (clicked_ms, lines)
    assert run_rates(page)["clear"] == 60

    # Bad input to the controls: a clear message, and the run keeps its rate.
    rate_form.locator("input").fill("-5")
    rate_form.locator("button").click()
    error = panel.locator("[data-role=error]")
    expect(error).to_contain_text("must be a number of requests per second")
    rate_form.locator("input").fill("5000")
    rate_form.locator("button").click()
    expect(error).to_contain_text("above the limit")
    assert run_rates(page)["clear"] == 60

    expect(page.locator("#progress-status")).to_have_text(FINISHED, timeout=240_000)

    # An instructor's view mounts the same component read-only on this run (issue 7): no controls, the
    # run's history and live windows all the same.
    run_id = panel.get_attribute("data-run")
    page.evaluate(MOUNT_READ_ONLY, run_id)
    read_only = page.locator("#read-only")
    expect(read_only.locator("[data-action=start]")).to_be_hidden()
    expect(read_only).to_have_attribute("data-run", run_id)
    page.wait_for_function("() => Number(document.querySelector('#read-only').dataset.windows) > 3")

    # The live stream through a relay that the test controls: first one window goes missing, which the
    # panel shows as a gap; then the worker (as far as the page can tell) sends nothing at all.
    relay = {"mode": "drop-one", "windows": 0}

    def relayed(ws) -> None:
        server = ws.connect_to_server()

        def forward(message) -> None:
            if str(message).startswith('{"seq":'):  # a live window (the history message starts with its type)
                relay["windows"] += 1
                if relay["mode"] == "silent" or (relay["mode"] == "drop-one" and relay["windows"] == 2):
                    return
            ws.send(message)

        server.on_message(forward)

    page.route_web_socket(re.compile(r"/ws/traffic/"), relayed)
    open_step(page, lab_console.url, "fault-injection")
    expect(panel).to_have_attribute("data-gaps", "1", timeout=10_000)
    page.wait_for_function(
        f"() => (document.querySelector('{CHART}').layout.shapes || []).some((s) => s.name === 'gap')"
    )
    relay["mode"] = "silent"
    open_step(page, lab_console.url, "fault-injection")
    expect(panel).to_have_attribute("data-state", "running")
    expect(panel).to_have_attribute("data-state", "stale", timeout=15_000)
    expect(panel.locator("[data-role=status]")).to_contain_text("the traffic worker may not be running")


def test_the_panel_says_plainly_when_there_is_no_app_or_no_traffic_service(student_page, lab_console) -> None:
    page = student_page
    open_step(page, lab_console.url, "preliminaries")
    panel = page.locator("#traffic")
    expect(panel).to_have_attribute("data-state", "idle")
    expect(panel.locator("[data-role=status]")).to_contain_text("No traffic is running")
    # Nothing deployed yet: Start explains, and no run is created.
    panel.locator("[data-action=start]").click()
    expect(panel.locator("[data-role=error]")).to_contain_text("Your app has no external address yet")
    assert page.evaluate("async () => (await (await fetch('/traffic/runs/')).json()).runs") == []
    expect(panel.locator("[data-action=start]")).to_be_enabled()

    # The chart's latency lines merge the shown streams' histograms and read percentiles from the merged
    # one, exactly as traffic/windows.py does (never an average of percentiles).
    rng = random.Random(5)
    streams = [Histogram(), Histogram()]
    for value in [rng.randrange(200, 5_000) for _ in range(300)] + [
        rng.randrange(900_000, 1_200_000) for _ in range(9)
    ]:
        streams[0].record(value)
    for value in (rng.randrange(0, 80_000) for _ in range(200)):
        streams[1].record(value)
    merged = Histogram()
    for hist in streams:
        merged.merge(hist)
    wanted = (50.0, 95.0, 99.0)
    in_browser = page.evaluate("([h, p]) => MeshTraffic.percentiles(h, p)", [[h.to_json() for h in streams], wanted])
    assert in_browser == [v / 1000 for v in merged.values_at(wanted)]

    # The traffic service unreachable (its API answers 503): the panel says so, the page works on.
    page.route(
        re.compile(r"/traffic/runs/$"),
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"error": "The traffic service cannot be reached right now (its Redis does not answer); try again."}',
        ),
    )
    open_step(page, lab_console.url, "preliminaries")
    expect(panel).to_have_attribute("data-state", "error")
    expect(panel.locator("[data-role=status]")).to_contain_text("The traffic service cannot be reached")
    expect(page.locator("#apply")).to_be_enabled()
