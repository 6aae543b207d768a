"""The projector view in Chromium on the real console: both panels render, the controls refuse bad input
with a message, and preparing the demo fills the traffic figures and the graph live."""

from __future__ import annotations

import re
import uuid

import pytest

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.browser
RECORD = """() => {
    window.__prepare = [];
    const status = document.getElementById("prepare-status");
    new MutationObserver(() => window.__prepare.push(status.textContent))
        .observe(status, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture
def instructor_page(page, lab_console):
    tag = uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex
    lab_console.manage("createclass", f"Projector {tag}", "--instructor", f"p{tag}:{password}")
    page.goto(lab_console.url + "/accounts/login/")
    page.fill("#id_username", f"p{tag}")
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lab_console.url + "/classroom/")
    return page, f"projector-{tag}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_projector_renders_both_panels_and_comes_alive_after_prepare(instructor_page, lab_console) -> None:
    page, slug = instructor_page
    page.goto(f"{lab_console.url}/demo/{slug}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    graph = page.locator("section.meshgraph")
    expect(graph).to_be_visible()
    expect(graph).to_have_attribute("data-namespace", page.locator("#demo code").inner_text())
    expect(page.locator("#demo-chart")).to_be_visible()
    expect(page.locator("#demo-traffic .figure")).to_have_count(3)

    # Bad input: a clear message, nothing injected.
    page.fill("input[name=abort_percent]", "150")
    page.click("#inject")
    expect(page.locator("#fault-problems")).to_contain_text("from 0 to 100")
    expect(page.locator("#fault-status")).to_have_attribute("data-state", "none")

    page.evaluate(RECORD)  # the sandbox may run the whole lab in seconds: record every status shown
    page.click("#prepare")
    expect(page.locator("#prepare-status")).to_have_attribute("data-state", "ready", timeout=400_000)
    shown = page.evaluate("window.__prepare")
    steps = {int(m.group(1)) for m in (re.match(r"^Step (\d) of 8", text) for text in shown) if m}
    assert steps == set(range(1, 9)), shown
    # The lab's traffic reaches the figures and the chart; the graph draws the mesh.
    expect(page.locator("#fig-5xx")).to_have_attribute("data-share", "0.00", timeout=30_000)
    expect(page.locator("#fig-p95")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"), timeout=10_000)
    expect(page.locator("#demo-chart")).to_have_attribute("data-state", "running", timeout=30_000)
    expect(graph).not_to_have_attribute("data-updates", "0", timeout=30_000)
