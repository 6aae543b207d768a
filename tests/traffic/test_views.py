"""The REST API under /traffic/: CSRF, methods, JSON errors, ownership; and the default target check
against the sandbox cluster (a target must be a Service address of the student's namespace)."""

from __future__ import annotations

import json
import socket

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from classroom.models import StudentNamespace
from traffic import control

from .support import wait_for

pytestmark = pytest.mark.django_db


def api_client(user) -> tuple[Client, dict[str, str]]:
    """A logged-in client that enforces CSRF like a browser, and the header carrying the token."""
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")  # sets the csrftoken cookie
    client.force_login(user)
    return client, {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


def post(client: Client, url: str, body: object, headers: dict[str, str]):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def ann(prefix: str):
    user = get_user_model().objects.create_user("ann")
    StudentNamespace.objects.create(user=user, name="lab-ann")
    return user


def test_posts_need_the_csrf_token(ann) -> None:
    client, token = api_client(ann)
    assert post(client, "/traffic/runs/", {"target": "http://10.0.0.1", "streams": []}, {}).status_code == 403
    refused = post(client, "/traffic/stop-all/", {}, {})
    assert refused.status_code == 403 and "CSRF token" in refused.json()["error"]
    assert post(client, "/traffic/stop-all/", {}, token).json() == {"stopped": 0}


def test_errors_are_json_with_the_right_status(ann) -> None:
    client, token = api_client(ann)
    assert client.get("/traffic/runs/").json() == {"runs": []}
    bad_json = client.post("/traffic/runs/", "{not json", content_type="application/json", **token)
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
    invalid = post(client, "/traffic/runs/", {"target": "http://10.0.0.1", "streams": [{"rate": -1}]}, token)
    assert invalid.status_code == 400 and "zero or a positive number" in invalid.json()["error"]
    # The test settings' cluster is unreachable, so the target cannot be shown to be the student's.
    refused = post(client, "/traffic/runs/", {"target": "http://10.0.0.1", "streams": [{"rate": 1}]}, token)
    assert refused.status_code == 403 and "could not check" in refused.json()["error"]
    wrong_method = client.get("/traffic/runs/0123456789abcdef/stop/")
    assert wrong_method.status_code == 405 and wrong_method["Allow"] == "POST"
    missing = post(client, "/traffic/runs/0123456789abcdef/stop/", {}, token)
    assert missing.status_code == 404 and "no traffic run" in missing.json()["error"]


def test_users_without_a_namespace_cannot_start_runs(prefix: str) -> None:
    teacher = get_user_model().objects.create_user("teacher")
    client, token = api_client(teacher)
    response = post(client, "/traffic/runs/", {"target": "http://10.0.0.1", "streams": [{"rate": 1}]}, token)
    assert response.status_code == 403 and "no lab namespace" in response.json()["error"]


def test_another_users_run_is_not_found(ann) -> None:
    run_id = control.start_run(ann.pk, "lab-ann", "http://10.0.0.1", [{"rate": 1}], allow_target=lambda n, t: True)
    bob = get_user_model().objects.create_user("bob")
    client, token = api_client(bob)
    for url, body in [("stop", {}), ("rate", {"stream": "GET /", "rate": 2}), ("streams", {"streams": [{}]})]:
        assert post(client, f"/traffic/runs/{run_id}/{url}/", body, token).status_code == 404
    assert client.get(f"/traffic/runs/{run_id}/history/").status_code == 404
    assert control.get_run(run_id).state == "running"


@pytest.mark.cluster
def test_runs_through_the_api_target_only_the_students_services(ann, sandbox, settings) -> None:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    settings.KUBECONFIG = str(sandbox.kubeconfig)
    api = k8s_config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    core = k8s.CoreV1Api(api)
    addresses = {}
    for namespace in ("lab-ann", "lab-other"):
        core.create_namespace({"metadata": {"name": namespace}})
        service = core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": "splitdim"},
                "spec": {"selector": {"app": "splitdim"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            },
        )
        addresses[namespace] = service.spec.cluster_ip
    gateway = {
        "metadata": {"name": "gateway-istio"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "gw"}, "ports": [{"name": "http", "port": 80}]},
    }
    core.create_namespaced_service("lab-ann", gateway)
    # Addresses a student types in are not the cluster's: external IPs, and names of ExternalName Services.
    typed = {"type": "ClusterIP", "selector": {"app": "x"}, "ports": [{"port": 80}], "externalIPs": ["203.0.113.7"]}
    core.create_namespaced_service("lab-ann", {"metadata": {"name": "typed"}, "spec": typed})
    external = {"type": "ExternalName", "externalName": "example.com"}
    core.create_namespaced_service("lab-ann", {"metadata": {"name": "elsewhere"}, "spec": external})

    def balancer_ip() -> str | None:
        ingress = core.read_namespaced_service("gateway-istio", "lab-ann").status.load_balancer.ingress
        return ingress[0].ip if ingress else None

    try:
        gateway_ip = wait_for(balancer_ip, 10, "a load-balancer address")
        client, token = api_client(ann)
        streams = [{"name": "clear", "path": "/api/clear", "rate": 5}]
        for target in (
            f"http://{addresses['lab-other']}:80",
            f"http://{addresses['lab-ann']}:81",
            "http://127.0.0.1",
            "http://203.0.113.7:80",
            "http://elsewhere.lab-ann.svc.cluster.local:80",
        ):
            refused = post(client, "/traffic/runs/", {"target": target, "streams": streams}, token)
            assert refused.status_code == 403 and "not an address of a Service" in refused.json()["error"]
        for target in (
            f"http://{addresses['lab-ann']}",
            "http://splitdim.lab-ann.svc.cluster.local:80",
            f"http://{gateway_ip}:80",
        ):
            started = post(client, "/traffic/runs/", {"target": target, "streams": streams}, token)
            assert started.status_code == 201, started.json()
        run = started.json()["run"]
        assert run["state"] == "running" and run["namespace"] == "lab-ann"

        changed = post(client, f"/traffic/runs/{run['id']}/rate/", {"stream": "clear", "rate": 2}, token)
        assert changed.status_code == 200 and changed.json()["run"]["total_rate"] == 2
        too_fast = post(client, f"/traffic/runs/{run['id']}/rate/", {"stream": "clear", "rate": 10_000}, token)
        assert too_fast.status_code == 400
        assert len(client.get("/traffic/runs/").json()["runs"]) == 3
        assert client.get(f"/traffic/runs/{run['id']}/history/").json() == {"windows": []}
        stopped = post(client, f"/traffic/runs/{run['id']}/stop/", {}, token)
        assert stopped.json()["run"]["state"] == "stopped"
        assert post(client, "/traffic/stop-all/", {}, token).json() == {"stopped": 2}
    finally:
        for namespace in addresses:
            core.delete_namespace(namespace)
        api.close()


def test_an_unreachable_redis_is_a_plain_503_not_a_500(ann, settings) -> None:
    client, token = api_client(ann)
    working = settings.REDIS_URL
    with socket.socket() as sock:  # a bound port that never listens: connections are refused
        sock.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
        try:
            listed = client.get("/traffic/runs/")
            stopped = post(client, "/traffic/stop-all/", {}, token)
        finally:
            settings.REDIS_URL = working  # the fixtures' clean-up uses Redis
    for response in (listed, stopped):
        assert response.status_code == 503 and "cannot be reached" in response.json()["error"]
