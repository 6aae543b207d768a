"""ensure_namespace: the request it sends, its answers, and its failures.

A small loopback HTTP server stands in for the API server to check the exact server-side-apply
request; the `cluster`-marked test runs against the sandbox once its fixture exists.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client
from kubernetes import client as k8s

from classroom.cluster import FIELD_MANAGER, ClusterError, api_client, ensure_namespace
from classroom.models import StudentNamespace

from .support import write_kubeconfig


class RecordingApiServer(ThreadingHTTPServer):
    """Answers namespace applies with 201 the first time and 200 afterwards (or always `status`)."""

    daemon_threads = True

    def __init__(self, status: int | None = None) -> None:
        super().__init__(("127.0.0.1", 0), ApplyHandler)
        self.forced_status = status
        self.requests: list[dict] = []
        self.namespaces: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ApplyHandler(BaseHTTPRequestHandler):
    server: RecordingApiServer

    def do_PATCH(self) -> None:  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        parts = urlsplit(self.path)
        self.server.requests.append(
            {
                "path": parts.path,
                "query": parse_qs(parts.query),
                "content_type": self.headers["Content-Type"],
                "body": body,
            }
        )
        name = parts.path.rsplit("/", 1)[-1]
        status = self.server.forced_status or (200 if name in self.server.namespaces else 201)
        self.server.namespaces.add(name)
        payload = body if status < 400 else {"kind": "Status", "code": status, "reason": "Forbidden"}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(status: int | None = None) -> Iterator[RecordingApiServer]:
    server = RecordingApiServer(status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def api_server(settings, tmp_path: Path) -> Iterator[RecordingApiServer]:
    for server in serve():
        settings.KUBECONFIG = str(write_kubeconfig(tmp_path / "kubeconfig", server.url))
        yield server


@pytest.fixture
def refusing_api_server(settings, tmp_path: Path) -> Iterator[RecordingApiServer]:
    for server in serve(status=403):
        settings.KUBECONFIG = str(write_kubeconfig(tmp_path / "kubeconfig", server.url))
        yield server


def test_apply_request_is_server_side_apply(api_server: RecordingApiServer) -> None:
    labels = {"meshconsole.io/student": "alice", "meshconsole.io/class": "mesh-101"}
    assert ensure_namespace("mc-alice", labels) is True
    (request,) = api_server.requests
    assert request["path"] == "/api/v1/namespaces/mc-alice"
    assert request["query"]["fieldManager"] == [FIELD_MANAGER]
    assert request["query"]["force"] == ["true"]
    assert request["content_type"] == "application/apply-patch+yaml"
    assert request["body"] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "mc-alice", "labels": labels},
    }


def test_second_apply_reports_existing(api_server: RecordingApiServer) -> None:
    assert ensure_namespace("mc-bob", {"meshconsole.io/student": "bob"}) is True
    assert ensure_namespace("mc-bob", {"meshconsole.io/student": "bob"}) is False
    assert len(api_server.requests) == 2


def test_refusal_is_a_cluster_error(refusing_api_server: RecordingApiServer) -> None:
    with pytest.raises(ClusterError, match="refused namespace mc-carol: 403"):
        ensure_namespace("mc-carol", {})


def test_unreachable_cluster_is_a_cluster_error(unreachable_kubeconfig: Path) -> None:
    with pytest.raises(ClusterError, match="cannot reach the cluster at http://127.0.0.1:"):
        ensure_namespace("mc-dave", {})


def test_missing_kubeconfig_is_a_cluster_error(settings, tmp_path: Path) -> None:
    settings.KUBECONFIG = str(tmp_path / "absent")
    with pytest.raises(ClusterError, match="no usable cluster configuration"):
        api_client()


@pytest.mark.cluster
def test_ensure_namespace_against_sandbox(sandbox_kubeconfig: Path, settings) -> None:
    settings.KUBECONFIG = str(sandbox_kubeconfig)
    name = f"mc-sandbox-{uuid.uuid4().hex[:8]}"
    labels = {"meshconsole.io/student": "sandbox-user", "meshconsole.io/class": "sandbox-class"}
    assert ensure_namespace(name, labels) is True
    assert ensure_namespace(name, labels) is False
    with api_client() as api:
        namespace = k8s.CoreV1Api(api).read_namespace(name)
    assert {key: namespace.metadata.labels[key] for key in labels} == labels
    managers = {entry.manager for entry in namespace.metadata.managed_fields or []}
    assert FIELD_MANAGER in managers


@pytest.mark.cluster
@pytest.mark.django_db
def test_first_login_creates_the_namespace(sandbox_kubeconfig: Path, settings, client: Client) -> None:
    """Set up while the cluster is down, the namespace appears at the student's first login."""
    username = f"s{uuid.uuid4().hex[:8]}"
    call_command("createclass", "Sandbox class", "--student", f"{username}:Student-pass-123", stderr=StringIO())
    pending = StudentNamespace.objects.get(user__username=username)
    assert not pending.created and pending.last_error

    settings.KUBECONFIG = str(sandbox_kubeconfig)
    assert client.login(username=username, password="Student-pass-123")
    namespace = StudentNamespace.objects.get(user__username=username)
    assert namespace.created and namespace.created_at is not None and namespace.last_error == ""
    with api_client() as api:
        live = k8s.CoreV1Api(api).read_namespace(namespace.name)
    assert live.metadata.labels["meshconsole.io/student"] == username
    assert live.metadata.labels["meshconsole.io/class"] == "sandbox-class"
