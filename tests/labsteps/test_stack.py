"""The lab end to end through real processes: uvicorn, a Celery worker, Redis and the sandbox.

A student logs in, applies every step through the API (the same calls the page makes), watches the
attempts live on the websocket, and every step ends verified; a worker killed in the middle of an
Apply leaves no attempt running once it is back.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from kubernetes import client as k8s
from websockets.sync.client import connect

from labsteps.models import Attempt
from labsteps.steps import all_steps
from tests.conftest import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FINISHED = ("passed", "failed")


def start(client: httpx.Client, step_id: str, kind: str = "apply") -> int:
    body = {}
    if kind == "apply":
        body = {"manifests": client.get(f"/lab/{step_id}/solution").json()["manifests"]}
    response = client.post(f"/lab/{step_id}/{kind}", json=body)
    assert response.status_code == 202, response.text
    return response.json()["attempt"]


def attempt(client: httpx.Client, attempt_id: int) -> dict:
    response = client.get(f"/lab/api/attempts/{attempt_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_status(client: httpx.Client, attempt_id: int, statuses: tuple[str, ...], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = attempt(client, attempt_id)
        if data["status"] in statuses:
            return data
        assert time.monotonic() < deadline, f"attempt still {data['status']} after {timeout}s: {data}"
        time.sleep(0.05)


def run(client: httpx.Client, step_id: str, kind: str = "apply", timeout: float = 180) -> dict:
    return wait_for_status(client, start(client, step_id, kind), FINISHED, timeout)


class Listener(threading.Thread):
    """Collects every message of the student's lab websocket."""

    def __init__(self, server, client: httpx.Client) -> None:
        super().__init__(daemon=True)
        self.url, self.origin = server.ws_url + "/ws/lab/", server.url
        self.cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        self.messages: list[dict] = []
        self.ready = threading.Event()
        self.ws = None

    def run(self) -> None:
        with connect(self.url, additional_headers={"Cookie": self.cookie}, origin=self.origin, proxy=None) as ws:
            self.ws = ws
            self.ready.set()
            try:
                for text in ws:
                    self.messages.append(json.loads(text))
            except Exception:  # closed at the end of the test
                return

    def __enter__(self) -> Listener:
        self.start()
        assert self.ready.wait(15), "the websocket did not connect"
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.close()
        self.join(10)

    def of_attempt(self, attempt_id: int) -> list[dict]:
        return [
            m["attempt"] for m in list(self.messages) if m["type"] == "attempt" and m["attempt"]["id"] == attempt_id
        ]


def test_a_student_applies_every_step_and_each_ends_verified(console_server, celery_worker, api_client) -> None:
    username, password = console_server.new_student()
    client = console_server.login(username, password)
    results = {}
    with Listener(console_server, client) as listener:
        for step in all_steps():
            results[step.id] = run(client, step.id)
            assert results[step.id]["status"] == "passed", (step.id, results[step.id])
            assert all(check["ok"] for check in results[step.id]["checks"]), results[step.id]["checks"]
        progress = client.get("/lab/api/progress").json()["steps"]
        assert {p["state"] for p in progress} == {"verified"}

        # The websocket showed the deploy step live: queued, each object in turn, the waits, the checks.
        hello = listener.messages[0]
        assert hello["type"] == "hello" and hello["user"] == username
        deploy = results["deploy-splitdim"]["id"]
        wait_for(lambda: listener.of_attempt(deploy)[-1]["status"] == "passed", 10, what="the deploy step's events")
        seen = listener.of_attempt(deploy)
        statuses = [m["status"] for m in seen]
        assert statuses[0] == "queued" and {"validating", "applying", "waiting", "checking"} <= set(statuses)
        objects = [m["progress"]["index"] for m in seen if m["progress"]]
        assert objects == sorted(objects) and set(objects) == {1, 2, 3, 4, 5}
        assert seen[-1]["applied"] == [
            "ConfigMap/splitdim-config", "Service/kvstore", "Service/splitdim", "StatefulSet/kvstore", "Deployment/splitdim"
        ]  # fmt: skip
        pending = next(m for m in seen if m["status"] == "checking")
        assert [c["ok"] for c in pending["checks"]] == [None] * 4

        def security_states() -> list[str]:
            return [m["state"] for m in list(listener.messages) if m["type"] == "progress" and m["step"] == "security"]

        wait_for(lambda: security_states()[-1:] == ["verified"], 10, what="the last step's verified event")
        assert "in_progress" in security_states()

    # The cluster holds what the lab built, in the student's namespace; Reset takes the last step back.
    namespace = hello["namespace"]
    custom = k8s.CustomObjectsApi(api_client)
    assert custom.get_namespaced_custom_object("security.istio.io", "v1", namespace, "peerauthentications", "default")
    reset = run(client, "security", "reset")
    assert reset["status"] == "passed", reset
    with pytest.raises(k8s.exceptions.ApiException):
        custom.get_namespaced_custom_object("security.istio.io", "v1", namespace, "peerauthentications", "default")
    assert client.get("/lab/api/progress").json()["steps"][-1]["state"] == "not_started"


def test_a_worker_killed_during_an_apply_leaves_no_attempt_running(console_server, celery_worker) -> None:
    client = console_server.login(*console_server.new_student())
    for step_id in ("preliminaries", "deploy-splitdim"):
        assert run(client, step_id)["status"] == "passed"
    attempt_id = start(client, "observability")
    wait_for_status(client, attempt_id, ("checking",), timeout=60)  # traffic checks take a few seconds each
    celery_worker.kill()
    assert attempt(client, attempt_id)["status"] == "checking"
    celery_worker.start()
    data = wait_for_status(client, attempt_id, FINISHED, timeout=120)
    assert data["message"]
    assert data["status"] == "passed", data
    assert "after a worker restart" in data["message"]
    assert Attempt.objects.get(pk=attempt_id).deliveries == 2
