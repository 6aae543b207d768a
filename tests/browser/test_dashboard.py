"""The instructor's live matrix in Chromium on the real console, with two students working in their own
browsers: as they apply steps the instructor's cells change within 2 s without a reload, and the stuck
highlight appears (for a failing student at once, for an idle one after the threshold set on the page)."""

from __future__ import annotations

import time
import uuid

import pytest

from classroom.naming import class_slug

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.browser

BROKEN = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: splitdim-config: broken\n"
LIVE_WITHIN_MS = 2000


def new_class(console) -> tuple[str, tuple[str, str], list[tuple[str, str]]]:
    tag = uuid.uuid4().hex[:8]
    teacher = (f"t{tag}", uuid.uuid4().hex)
    students = [(f"s{tag}-{i}", uuid.uuid4().hex) for i in range(2)]
    name = f"dash {tag}"
    args = ["createclass", name, "--instructor", ":".join(teacher)]
    for student in students:
        args += ["--student", ":".join(student)]
    console.manage(*args)
    return class_slug(name), teacher, students


def log_in(browser, url: str, username: str, password: str, landing: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + landing)
    return context, page, errors


def cell(page, student_id: str, step: str):
    return page.locator(f"#matrix tr[data-student='{student_id}'] td.cell[data-step='{step}']")


def wait_for_cell(page, student_id: str, step: str, states: list[str], timeout_ms: int) -> float:
    """Wait until the cell shows one of `states`; the seconds it took."""
    started = time.monotonic()
    page.wait_for_function(
        """([sid, step, states]) => {
            const td = document.querySelector(`#matrix tr[data-student='${sid}'] td.cell[data-step='${step}']`);
            return td && states.includes(td.dataset.state);
        }""",
        arg=[student_id, step, states],
        timeout=timeout_ms,
    )
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_matrix_follows_two_students_live_and_highlights_the_stuck(browser, lab_console) -> None:
    url = lab_console.url
    slug, teacher, students = new_class(lab_console)
    contexts = []
    try:
        t_context, teacher_page, teacher_errors = log_in(browser, url, *teacher, "/classroom/")
        contexts.append(t_context)
        teacher_page.goto(f"{url}/teach/{slug}/")
        expect(teacher_page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(teacher_page.locator("#matrix tbody tr[data-student]")).to_have_count(2)
        teacher_page.evaluate("window.__sameDocument = true")
        rows = teacher_page.locator("#matrix tbody tr[data-student]")
        ids = {rows.nth(i).locator("th a").inner_text(): rows.nth(i).get_attribute("data-student") for i in range(2)}
        first, second = (ids[name] for name, _ in students)
        expect(cell(teacher_page, first, "preliminaries")).to_have_attribute("data-state", "not_started")

        pages = []
        for username, password in students:
            context, page, errors = log_in(browser, url, username, password, "/lab/")
            contexts.append(context)
            pages.append((page, errors))

        # Student 1 applies step 1: their cell leaves "not started" within 2 s, then ends verified.
        page1 = pages[0][0]
        page1.goto(f"{url}/lab/preliminaries/")
        expect(page1.locator("#connection")).to_have_attribute("data-state", "live")
        page1.click("#apply")
        took = wait_for_cell(
            teacher_page, first, "preliminaries", ["in_progress", "applied", "verified"], LIVE_WITHIN_MS
        )
        assert took <= LIVE_WITHIN_MS / 1000
        expect(cell(teacher_page, first, "preliminaries")).to_have_attribute("data-attempts", "1")

        # Student 2 applies a manifest that does not validate: failed within 2 s, and highlighted as stuck.
        page2 = pages[1][0]
        page2.goto(f"{url}/lab/deploy-splitdim/")
        expect(page2.locator("#connection")).to_have_attribute("data-state", "live")
        page2.fill("#editor", BROKEN)
        page2.click("#apply")
        wait_for_cell(teacher_page, second, "deploy-splitdim", ["failed"], LIVE_WITHIN_MS)
        expect(teacher_page.locator(f"#matrix tr[data-student='{second}']")).to_have_attribute("data-stuck", "true")
        expect(cell(teacher_page, second, "deploy-splitdim")).to_have_attribute("data-stuck", "true")
        expect(teacher_page.locator(f"#matrix tr[data-student='{second}'] .stuck-reason")).to_have_text("failing")
        totals = teacher_page.locator("#totals td.totals[data-step='deploy-splitdim'] .total[data-state='failed']")
        expect(totals).to_have_text("1")

        # Student 1's step is verified; with the default threshold (5 min) they are not stuck ...
        wait_for_cell(teacher_page, first, "preliminaries", ["verified"], 180_000)
        row1 = teacher_page.locator(f"#matrix tr[data-student='{first}']")
        expect(row1).to_have_attribute("data-stuck", "false")
        # ... and with a tiny one (0.02 min = 1.2 s) the idle highlight appears by itself as time passes.
        teacher_page.fill("#stuck-minutes", "0.02")
        expect(row1).to_have_attribute("data-stuck", "true", timeout=5_000)
        expect(row1.locator(".stuck-reason")).to_contain_text("idle")
        expect(teacher_page.locator("#stuck-count")).to_have_text("2 stuck")

        assert teacher_page.evaluate("window.__sameDocument === true"), "the dashboard was reloaded"
        # What the page shows is what the server has.
        snapshot = teacher_page.evaluate(f"fetch('/teach/{slug}/matrix.json').then(r => r.json())")
        states = {(str(s["id"]), c["step"]): c["state"] for s in snapshot["students"] for c in s["cells"]}
        assert states[(first, "preliminaries")] == "verified"
        assert states[(second, "deploy-splitdim")] == "failed"

        # The drill-down of the failing student: their attempt, the problem, the graph and traffic panels.
        teacher_page.click(f"#matrix tr[data-student='{second}'] th a")
        teacher_page.wait_for_url(f"{url}/teach/{slug}/students/{second}/")
        attempt = teacher_page.locator("#attempts li.attempt").first
        expect(attempt).to_have_attribute("data-status", "failed")
        attempt.locator(".diff-box summary").click()  # a long diff starts folded
        expect(attempt.locator(".diff")).to_contain_text("splitdim-config: broken")
        expect(teacher_page.locator("[data-meshgraph]")).to_be_visible()
        expect(teacher_page.locator("[data-traffic-panel]")).to_be_visible()
        expect(teacher_page.locator("[data-traffic-panel] [data-action='start']")).to_be_hidden()
        expect(teacher_page.locator("[data-traffic-panel] [data-action='stop']")).to_be_hidden()

        # The drill-down follows the student live: another Apply shows up in the attempt list without a reload.
        expect(teacher_page.locator("#connection")).to_have_attribute("data-state", "live")
        teacher_page.evaluate("window.__drilldownDocument = true")
        shown = teacher_page.locator("#attempts li.attempt").count()
        page2.click("#apply")
        expect(teacher_page.locator("#attempts li.attempt")).to_have_count(shown + 1, timeout=LIVE_WITHIN_MS + 3_000)
        expect(teacher_page.locator("#attempts li.attempt").first).to_have_attribute("data-status", "failed")
        assert teacher_page.evaluate("window.__drilldownDocument === true"), "the drill-down was reloaded"
        assert not teacher_errors and not any(errors for _, errors in pages)
    finally:
        for context in contexts:
            context.close()


def test_students_cannot_open_the_dashboard(browser, lab_console) -> None:
    url = lab_console.url
    slug, _, students = new_class(lab_console)
    context, page, _ = log_in(browser, url, *students[0], "/lab/")
    try:
        response = page.goto(f"{url}/teach/{slug}/")
        assert response.status == 403
        expect(page.locator("h1")).to_have_text("Not allowed")
    finally:
        context.close()
