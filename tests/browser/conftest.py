"""Browser tests: Debian's Chromium driven by Playwright's Python API.

Playwright's own browser download (`playwright install`) is never used: the tests launch the system
Chromium (`/usr/bin/chromium`, or $CHROMIUM) with flags that keep it from reaching the network.
Test modules here mark themselves `browser`; they are skipped when Playwright or Chromium is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._console import ConsoleDidNotStart, RunningConsole, running_console

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a thread
# with a running loop unless told that this is intended (it is: the calls are ordinary sync code).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")  # a live sync Playwright keeps an event loop running: end it with the module
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh browser context and page; the test fails on any uncaught JavaScript error."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# --- The console under test -----------------------------------------------------------------------
# TEMPORARY: until tests/stack.py offers `console_server` and `celery_worker`, the browser tests run
# the whole console the way `make run` does (benchmarks/_console.py). Tests use only `url`,
# `kubeconfig` and `new_student()` of it, so moving to the stack fixtures changes this part only.


@pytest.fixture(scope="session")
def lab_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    try:
        with running_console(tmp_path_factory.mktemp("console")) as console:
            yield console
    except ConsoleDidNotStart as error:
        pytest.fail(f"the console did not start: {error}")


@pytest.fixture
def student_page(page, lab_console: RunningConsole):
    """A page logged in as a new student, on the step list."""
    username, password = lab_console.new_student()
    page.goto(lab_console.url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lab_console.url + "/lab/")
    return page
