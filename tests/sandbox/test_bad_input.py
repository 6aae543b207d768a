"""Bad requests get the right Status code and a clear message, and change nothing."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.cluster

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}}


def snapshot(c: httpx.Client, namespace: str) -> list[tuple[str, str]]:
    out = []
    for path in (
        "/api/v1/namespaces/{ns}/configmaps",
        "/apis/apps/v1/namespaces/{ns}/deployments",
        "/api/v1/namespaces/{ns}/pods",
        "/api/v1/namespaces/{ns}/services",
    ):
        for item in c.get(path.format(ns=namespace)).json()["items"]:
            out.append((item["kind"], item["metadata"]["name"]))
    return sorted(out)


CASES = [
    # (id, method, path, headers, body, code, reason, message fragment)
    (
        "malformed-json",
        "POST",
        "/api/v1/namespaces/{ns}/configmaps",
        {"Content-Type": "application/json"},
        b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"',
        400,
        "BadRequest",
        "could not be decoded",
    ),
    (
        "malformed-yaml-apply",
        "PATCH",
        "/api/v1/namespaces/{ns}/configmaps/cm?fieldManager=t",
        {"Content-Type": "application/apply-patch+yaml"},
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm\n",
        400,
        "BadRequest",
        "at line",
    ),
    (
        "not-an-object",
        "POST",
        "/api/v1/namespaces/{ns}/configmaps",
        {"Content-Type": "application/json"},
        b"[1, 2]",
        400,
        "BadRequest",
        "must be a JSON object",
    ),
    (
        "unknown-kind",
        "POST",
        "/apis/example.com/v1/namespaces/{ns}/widgets",
        {"Content-Type": "application/json"},
        b'{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}',
        404,
        "NotFound",
        "the server could not find the requested resource",
    ),
    (
        "kind-mismatch",
        "POST",
        "/api/v1/namespaces/{ns}/configmaps",
        {"Content-Type": "application/json"},
        json.dumps({**CM, "kind": "Secret"}).encode(),
        400,
        "BadRequest",
        "does not match the expected kind",
    ),
    (
        "other-namespace",
        "POST",
        "/api/v1/namespaces/{ns}/configmaps",
        {"Content-Type": "application/json"},
        json.dumps({**CM, "metadata": {"name": "cm", "namespace": "kube-system"}}).encode(),
        400,
        "BadRequest",
        "does not match the namespace",
    ),
    (
        "missing-field-manager",
        "PATCH",
        "/api/v1/namespaces/{ns}/configmaps/cm",
        {"Content-Type": "application/apply-patch+yaml"},
        json.dumps(CM).encode(),
        422,
        "Invalid",
        "fieldManager: Required value",
    ),
    (
        "invalid-name",
        "POST",
        "/api/v1/namespaces/{ns}/configmaps",
        {"Content-Type": "application/json"},
        json.dumps({**CM, "metadata": {"name": "Bad_Name"}}).encode(),
        422,
        "Invalid",
        'ConfigMap "Bad_Name" is invalid',
    ),
    (
        "invalid-deployment",
        "POST",
        "/apis/apps/v1/namespaces/{ns}/deployments",
        {"Content-Type": "application/json"},
        b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {}}}',
        422,
        "Invalid",
        "spec.selector: Required value",
    ),
    (
        "wrong-content-type",
        "PATCH",
        "/api/v1/namespaces/{ns}/configmaps/cm",
        {"Content-Type": "text/plain"},
        b"data: x",
        415,
        "UnsupportedMediaType",
        "accepted media types include",
    ),
    (
        "smp-on-custom-resource",
        "PATCH",
        "/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices/vs",
        {"Content-Type": "application/strategic-merge-patch+json"},
        b"{}",
        415,
        "UnsupportedMediaType",
        "application/merge-patch+json",
    ),
    (
        "force-without-apply",
        "PATCH",
        "/api/v1/namespaces/{ns}/configmaps/cm?force=true",
        {"Content-Type": "application/merge-patch+json"},
        b"{}",
        422,
        "Invalid",
        "force: Forbidden",
    ),
    (
        "oversized",
        "POST",
        "/api/v1/namespaces/{ns}/configmaps",
        {"Content-Type": "application/json"},
        json.dumps({**CM, "data": {"k": "x" * (4 * 1024 * 1024)}}).encode(),
        413,
        "RequestEntityTooLarge",
        "limit",
    ),
    (
        "missing-namespace",
        "POST",
        "/api/v1/namespaces/nowhere-{ns}/configmaps",
        {"Content-Type": "application/json"},
        json.dumps(CM).encode(),
        404,
        "NotFound",
        'namespaces "nowhere-',
    ),
    (
        "wrong-method",
        "OPTIONS",
        "/api/v1/namespaces/{ns}/configmaps",
        {},
        b"",
        405,
        "MethodNotAllowed",
        "does not allow",
    ),
    (
        "bad-selector",
        "GET",
        "/api/v1/namespaces/{ns}/configmaps?labelSelector=a%20in%20(",
        {},
        b"",
        400,
        "BadRequest",
        "",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_request(sandbox, namespace, case):
    _, method, path, headers, body, code, reason, fragment = case
    with httpx.Client(base_url=sandbox.server, timeout=10) as c:
        vs = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "vs"},
            "spec": {"hosts": ["x"]},
        }
        c.post(f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices", json=vs)
        before = snapshot(c, namespace)
        r = c.request(method, path.format(ns=namespace), headers=headers, content=body)
        assert r.status_code == code, r.text
        status = r.json()
        assert status["kind"] == "Status" and status["status"] == "Failure"
        assert status["code"] == code and status["reason"] == reason
        assert fragment in status["message"]
        assert snapshot(c, namespace) == before


def test_not_found_and_conflict_messages(sandbox, namespace):
    with httpx.Client(base_url=sandbox.server, timeout=10) as c:
        r = c.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
        assert r.status_code == 404
        assert r.json()["message"] == 'deployments.apps "web" not found'
        assert r.json()["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
        assert c.post(f"/api/v1/namespaces/{namespace}/configmaps", json=CM).status_code == 201
        again = c.post(f"/api/v1/namespaces/{namespace}/configmaps", json=CM)
        assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
        assert again.json()["message"] == 'configmaps "cm" already exists'
        assert c.get("/openapi/v2").status_code == 404
