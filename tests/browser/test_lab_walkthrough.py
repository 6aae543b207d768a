"""A student walks the lab in Chromium on the real console: pages, Apply, live progress, verification.

Everything is real: the console as `make run` starts it (uvicorn, Celery worker, Redis, the sandbox
cluster); the browser only clicks. Progress is observed the way a student sees it: the text of
#progress-status, recorded by a MutationObserver so that short-lived phases are not missed.
"""

from __future__ import annotations

import json
import re

import pytest
from kubernetes import client, config

from labsteps.content import load_steps

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.browser

STEPS = load_steps()
FINISHED = re.compile(r"^(Passed|Failed)")
# Statuses shown in #progress-status, recorded on every change (each websocket message is its own task,
# so the observer sees every phase even when the pipeline runs fast).
RECORD_STATUSES = """() => {
    window.__statuses = [];
    const status = document.getElementById("progress-status");
    new MutationObserver(() => window.__statuses.push(status.textContent))
        .observe(status, {childList: true, characterData: true, subtree: true});
}"""


def open_step(page, url: str, step_id: str) -> dict:
    """Open a step page, wait until its websocket is live; the page's #lab-config."""
    page.goto(f"{url}/lab/{step_id}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    return json.loads(page.locator("#lab-config").text_content())


def lab_objects(kubeconfig, namespace: str) -> list[str]:
    """Kind/name of every object of the lab's kinds in `namespace`, read through the cluster API."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        found = [f"ConfigMap/{o.metadata.name}" for o in core.list_namespaced_config_map(namespace).items]
        found += [f"Service/{o.metadata.name}" for o in core.list_namespaced_service(namespace).items]
        found += [f"Deployment/{o.metadata.name}" for o in apps.list_namespaced_deployment(namespace).items]
        found += [f"StatefulSet/{o.metadata.name}" for o in apps.list_namespaced_stateful_set(namespace).items]
        return [name for name in found if name != "ConfigMap/kube-root-ca.crt"]
    finally:
        api.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_student_walks_all_seven_steps(student_page, lab_console) -> None:
    page = student_page
    expect(page.locator("#step-list > li")).to_have_count(7)
    expect(page.locator("#step-list > li[data-state='not_started']")).to_have_count(7)

    for step in STEPS:
        open_step(page, lab_console.url, step.id)
        expect(page.locator("h1")).to_have_text(step.title)
        expect(page.locator("#progress-status")).to_have_text("Not run yet")
        page.evaluate(RECORD_STATUSES)
        page.click("#apply")
        expect(page.locator("#apply")).to_be_disabled()  # no second Apply while this one runs
        expect(page.locator("#progress-status")).to_have_text(FINISHED, timeout=180_000)

        checks = page.locator("#checks > li")
        failed = [
            f"{item.locator('.check-name').inner_text()}: {item.locator('details pre').all_inner_texts()}"
            for item in checks.all()
            if item.get_attribute("data-ok") != "true"
        ]
        message = page.locator("#progress-message").inner_text()
        assert page.locator("#progress-status").inner_text() == "Passed", f"{step.id}: {message} {failed}"
        assert checks.count() == len(step.checks) and not failed

        seen = page.evaluate("window.__statuses")
        assert "Queued" in seen or "Validating" in seen, seen
        assert "Checking" in seen, f"{step.id}: {seen}"
        if step.manifests.strip():  # steps with objects show them being applied one by one
            total = len(step.render_manifests("sample"))
            assert f"Applying object {total} of {total}" in seen, f"{step.id}: {seen}"
        expect(page.locator("#progress")).to_have_attribute("data-status", "passed")
        expect(page.locator("#progress-next")).to_be_visible()
        expect(page.locator(f"#step-nav > li[data-step-id='{step.id}']")).to_have_attribute("data-state", "verified")
        expect(page.locator("#apply")).to_be_enabled()
        assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"

    page.goto(lab_console.url + "/lab/")
    expect(page.locator("#step-list > li[data-state='verified']")).to_have_count(7)
    expect(page.locator("#overall .count")).to_have_text("7 of 7 steps verified")


BROKEN = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: splitdim-config: broken
data:
  KVSTORE_MODE: kvstore
"""


def test_invalid_yaml_is_shown_at_its_line_and_nothing_is_applied(student_page, lab_console) -> None:
    page = student_page
    lab = open_step(page, lab_console.url, "deploy-splitdim")
    page.fill("#editor", BROKEN)
    page.click("#apply")

    problems = page.locator("#editor-problems")
    expect(problems).to_be_visible()
    expect(problems).to_contain_text("Nothing was applied")
    expect(problems.locator("button.where")).to_have_text(["Line 4"])
    marked = page.locator(".editor-gutter span.error")
    expect(marked).to_have_count(1)
    expect(marked).to_have_attribute("data-line", "4")
    expect(page.locator(".editor-marks .note[data-line='4']")).to_be_visible()
    expect(page.locator("#progress-status")).to_have_text("Failed")
    expect(page.locator("#progress-stages li[data-phase='failed']").first).to_have_attribute("data-stage", "validating")
    expect(page.locator("#apply")).to_be_enabled()

    # The problem list jumps to the line: the textarea selects line 4.
    page.locator("#editor").evaluate("t => t.setSelectionRange(0, 0)")
    problems.locator("button.where").click()
    selected = page.locator("#editor").evaluate("t => t.value.slice(t.selectionStart, t.selectionEnd)")
    assert selected == "  name: splitdim-config: broken"

    assert lab_objects(lab_console.kubeconfig, lab["namespace"]) == []
    assert page.evaluate("window.__sameDocument === true")


def test_hints_solution_and_reset(student_page, lab_console) -> None:
    page = student_page
    step = next(s for s in STEPS if s.id == "deploy-splitdim")
    lab = open_step(page, lab_console.url, step.id)
    assert lab["hintsReleased"] == 0

    # Hints come one at a time and stay released when the page is opened again.
    expect(page.locator("#hint")).to_have_text(f"Hint {len(step.hints)} left")
    page.click("#hint")
    expect(page.locator("#hint-list > li")).to_have_count(1)
    expect(page.locator("#hint-list > li").first).to_contain_text("kubectl")
    page.click("#hint")
    expect(page.locator("#hint-list > li")).to_have_count(2)
    open_step(page, lab_console.url, step.id)
    expect(page.locator("#hint-list > li")).to_have_count(2)
    expect(page.locator("#hint")).to_have_text(f"Next hint {len(step.hints) - 2} left")

    # The solution offers its manifests for the editor; Undo brings the learner's text back.
    page.fill("#editor", "# my attempt\n")
    page.click("#solution")
    expect(page.locator("#solution-panel")).to_be_visible()
    expect(page.locator("#solution-body pre").first).to_contain_text("kubectl")
    page.click("#use-solution")
    assert page.input_value("#editor").startswith("apiVersion: v1\nkind: ConfigMap")
    page.locator("#editor-notice button", has_text="Undo").click()
    assert page.input_value("#editor") == "# my attempt\n"
    page.click("#revert")
    assert page.input_value("#editor").startswith("apiVersion: v1\nkind: ConfigMap")

    # Reset asks first: Cancel does nothing, confirming runs a reset attempt.
    page.click("#reset")
    dialog = page.locator("#reset-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#progress-status")).to_have_text("Not run yet")
    page.click("#reset")
    dialog.get_by_role("button", name="Reset step").click()
    expect(page.locator("#progress-kind")).to_contain_text("Reset #")
    expect(page.locator("#progress-status")).to_have_text(FINISHED, timeout=60_000)
    assert page.locator("#progress-status").inner_text().startswith("Passed"), page.locator(
        "#progress-message"
    ).inner_text()
    assert page.evaluate("window.__sameDocument === true")


def test_progress_survives_a_lost_connection(student_page, lab_console) -> None:
    page = student_page
    # The page's websocket goes to the real server through a relay that the test can cut or refuse.
    relays = []
    refuse = False

    def relay(route) -> None:
        if refuse:
            route.close(code=1013, reason="try again later")
            return
        route.connect_to_server()
        relays.append(route)

    page.route_web_socket(re.compile(r"/ws/lab/$"), relay)
    open_step(page, lab_console.url, "preliminaries")
    indicator = page.locator("#connection")
    page.evaluate(
        """() => {
            window.__connection = [];
            const indicator = document.getElementById("connection");
            new MutationObserver(() => window.__connection.push(indicator.dataset.state))
                .observe(indicator, {attributes: true, attributeFilter: ["data-state"]});
        }"""
    )

    # A dropped connection is noticed, shown, and replaced by a new one.
    relays[0].close(code=1012, reason="server restart")
    page.wait_for_function("window.__connection.includes('live')", timeout=30_000)
    assert page.evaluate("window.__connection")[0] == "reconnecting"
    assert len(relays) == 2, "the page did not open a new websocket"

    # While no websocket can be had, an Apply is still followed to its end (by polling its attempt).
    refuse = True
    relays[1].close(code=1012, reason="server restart")
    expect(indicator).not_to_have_attribute("data-state", "live")
    expect(indicator.get_by_role("button", name="Retry now")).to_be_visible()
    page.evaluate(RECORD_STATUSES)
    page.click("#apply")
    expect(page.locator("#progress-status")).to_have_text(FINISHED, timeout=120_000)
    expect(page.locator("#progress-status")).to_have_text("Passed")
    assert len(relays) == 2, "the Apply was followed without a websocket"

    # And once the server takes connections again, the page is live again, never reloaded.
    refuse = False
    expect(indicator).to_have_attribute("data-state", "live", timeout=30_000)
    assert len(relays) == 3
    assert page.evaluate("window.__sameDocument === true")
