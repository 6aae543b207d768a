"""Apply → verified for the deploy step, and the step page's server time.

Targets (issue 3): Apply → verified of the deploy step on the sandbox at most 3 s at p95 over 20 runs,
measured from the click (the POST) to the moment the page learns the attempt passed (its websocket
event); a step page served in at most 100 ms. The console runs as `make run` starts it (uvicorn, a
prefork Celery worker, the embedded Redis and the sandbox). Each run uses a new student, so the deploy
step starts from an empty, mesh-enrolled namespace, as in class.
Run: .venv/bin/python benchmarks/apply_deploy_step.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._console import RunningConsole, running_console  # noqa: E402
from benchmarks._lab import percentile  # noqa: E402

RUNS = 20
PAGE_REQUESTS = 50
STEP = "deploy-splitdim"
FINISHED = ("passed", "failed")


def log_in(console: RunningConsole) -> httpx.Client:
    username, password = console.new_student()
    client = httpx.Client(base_url=console.url, timeout=60, trust_env=False)
    client.get("/accounts/login/")
    token = client.cookies["csrftoken"]
    client.post("/accounts/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token})
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client


def apply_and_wait(
    console: RunningConsole, client: httpx.Client, step: str, timeout: float = 120
) -> tuple[float, dict]:
    """POST Apply and wait on the websocket for the attempt to finish; (seconds from the POST, attempt)."""
    manifests = client.get(f"/lab/{step}/solution").json()["manifests"]
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    ws_url = "ws" + console.url.removeprefix("http") + "/ws/lab/"
    with connect(ws_url, additional_headers={"Cookie": cookie}, origin=console.url, proxy=None) as ws:
        json.loads(ws.recv(10))  # hello: the socket is subscribed before the click
        started = time.perf_counter()
        response = client.post(f"/lab/{step}/apply", json={"manifests": manifests})
        if response.status_code != 202:
            raise RuntimeError(f"Apply was refused: {response.status_code} {response.text}")
        attempt_id = response.json()["attempt"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(max(0.1, deadline - time.monotonic())))
            attempt = message.get("attempt") or {}
            if message["type"] == "attempt" and attempt.get("id") == attempt_id and attempt["status"] in FINISHED:
                return time.perf_counter() - started, attempt
    raise RuntimeError(f"attempt {attempt_id} did not finish within {timeout}s")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, running_console(Path(tmp)) as console:
        durations = []
        for run in range(RUNS):
            client = log_in(console)
            _, prepared = apply_and_wait(console, client, "preliminaries")
            seconds, attempt = apply_and_wait(console, client, STEP)
            if attempt["status"] != "passed" or prepared["status"] != "passed":
                raise RuntimeError(f"run {run}: the step did not pass: {attempt['message']}")
            durations.append(seconds)
        page_times = []
        for _ in range(PAGE_REQUESTS):
            started = time.perf_counter()
            response = client.get(f"/lab/{STEP}/")
            page_times.append(time.perf_counter() - started)
            response.raise_for_status()
    print(f"Apply -> verified, step {STEP}, {RUNS} runs (from the POST to the websocket's 'passed'):")
    print(
        f"  p50 {percentile(durations, 50):.2f} s, p95 {percentile(durations, 95):.2f} s, "
        f"max {max(durations):.2f} s (target p95 <= 3 s)"
    )
    print(f"Step page /lab/{STEP}/ server time over loopback, {PAGE_REQUESTS} requests:")
    print(
        f"  p50 {percentile(page_times, 50) * 1000:.0f} ms, p95 {percentile(page_times, 95) * 1000:.0f} ms "
        f"(target <= 100 ms)"
    )


if __name__ == "__main__":
    main()
