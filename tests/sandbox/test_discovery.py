"""Discovery, aggregated discovery and the minimal OpenAPI v3: shapes, and real clients reading them.

The last part serves these documents (and a few Tables from sandbox.tables) from a small loopback
stub and points the real `kubernetes` DynamicClient and kubectl at it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox import catalog, discovery, tables

KUBECTL_133_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)
KUBECTL_137_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


def served_group_versions() -> list[tuple[str, str]]:
    """(group, version) for core v1 and every group-version listed in /apis."""
    listed = [(g["name"], v["version"]) for g in discovery.api_group_list()["groups"] for v in g["versions"]]
    return [("", "v1"), *listed]


# ---- legacy discovery ----------------------------------------------------------------------------


def test_version_info() -> None:
    info = discovery.version_info()
    assert info["gitVersion"] == "v1.32.0-sandbox"
    assert (info["major"], info["minor"]) == ("1", "32")
    assert info["gitVersion"].startswith(f"v{info['major']}.{info['minor']}.")


def test_api_versions() -> None:
    assert discovery.api_versions("127.0.0.1:6443") == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    }


def test_version_priority_orders_ga_then_beta_then_alpha() -> None:
    versions = [
        "v1alpha1",
        "v1beta1",
        "v1",
        "v2",
        "v1beta2",
        "v2alpha1",
        "v10",
        "custom",
    ]
    assert sorted(versions, key=discovery.version_priority) == [
        "v10",
        "v2",
        "v1",
        "v1beta2",
        "v1beta1",
        "v2alpha1",
        "v1alpha1",
        "custom",
    ]


def test_group_list_preferred_version_is_one_of_the_entries() -> None:
    doc = discovery.api_group_list()
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupList", "v1")
    names = [g["name"] for g in doc["groups"]]
    assert names == [g for g, _ in catalog.group_versions()]
    for group in doc["groups"]:
        versions = [v["version"] for v in group["versions"]]
        assert versions == sorted(versions, key=discovery.version_priority)
        # DynamicClient marks the preferred version by whole-dict equality with an entry.
        assert sum(entry == group["preferredVersion"] for entry in group["versions"]) == 1
        assert group["preferredVersion"] == group["versions"][0]
        for entry in group["versions"]:
            assert entry["groupVersion"] == f"{group['name']}/{entry['version']}"
    istio = next(g for g in doc["groups"] if g["name"] == "networking.istio.io")
    assert [v["version"] for v in istio["versions"]] == ["v1", "v1beta1", "v1alpha3"]


def test_preferred_versions_agree_with_catalog() -> None:
    for group in discovery.api_group_list()["groups"]:
        for resource in catalog.RESOURCES:
            if resource.group == group["name"]:
                assert resource.preferred_version == group["preferredVersion"]["version"]


def test_api_group() -> None:
    apps = discovery.api_group("apps")
    assert apps == {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }
    assert discovery.api_group("example.com") is None
    assert discovery.api_group("") is None


@pytest.mark.parametrize(("group", "version"), served_group_versions())
def test_every_listed_group_version_answers_a_resource_list(group: str, version: str) -> None:
    doc = discovery.api_resource_list(group, version)
    assert doc is not None
    assert (doc["kind"], doc["apiVersion"]) == ("APIResourceList", "v1")
    assert doc["groupVersion"] == (f"{group}/{version}" if group else version)
    main = {r["name"]: r for r in doc["resources"] if "/" not in r["name"]}
    assert set(main) == {rt.plural for rt in catalog.resources_in(group, version)}
    for rt in catalog.resources_in(group, version):
        entry = main[rt.plural]
        assert entry["kind"] == rt.kind
        assert entry["namespaced"] is rt.namespaced
        assert entry["singularName"] == rt.kind.lower()
        assert entry["verbs"] == [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
        assert entry.get("shortNames", []) == list(rt.short_names)
        assert entry.get("categories", []) == list(rt.categories)
        subs = {r["name"]: r for r in doc["resources"] if r["name"].startswith(rt.plural + "/")}
        assert set(subs) == {f"{rt.plural}/{s}" for s in rt.subresources}
        for sub in subs.values():
            assert sub["verbs"] == ["get", "patch", "update"]
            assert sub["namespaced"] is rt.namespaced
            assert sub["singularName"] == ""


def test_deployment_entries_match_the_captured_shape() -> None:
    doc = discovery.api_resource_list("apps", "v1")
    assert doc is not None
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["deployments"] == {
        "name": "deployments",
        "singularName": "deployment",
        "namespaced": True,
        "kind": "Deployment",
        "verbs": [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
        "shortNames": ["deploy"],
        "categories": ["all"],
    }
    assert by_name["deployments/scale"] == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }
    assert by_name["deployments/status"]["kind"] == "Deployment"
    core = discovery.api_resource_list("", "v1")
    assert core is not None
    namespaces = next(r for r in core["resources"] if r["name"] == "namespaces")
    assert namespaces["namespaced"] is False
    assert "secrets/status" not in {r["name"] for r in core["resources"]}


def test_unserved_group_versions_have_no_resource_list() -> None:
    assert discovery.api_resource_list("apps", "v2") is None
    assert discovery.api_resource_list("", "v2") is None
    assert discovery.api_resource_list("example.com", "v1") is None


# ---- aggregated discovery ------------------------------------------------------------------------


def test_wants_aggregated() -> None:
    assert discovery.wants_aggregated(KUBECTL_133_ACCEPT)
    assert discovery.wants_aggregated(KUBECTL_137_ACCEPT)
    assert discovery.wants_aggregated("application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList")
    assert not discovery.wants_aggregated("application/json")
    assert not discovery.wants_aggregated("application/json, */*")
    assert not discovery.wants_aggregated(
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    )
    assert discovery.AGGREGATED_CONTENT_TYPE == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def test_aggregated_core() -> None:
    doc = discovery.aggregated_discovery(core=True)
    assert (doc["kind"], doc["apiVersion"], doc["metadata"]) == (
        "APIGroupDiscoveryList",
        "apidiscovery.k8s.io/v2",
        {},
    )
    [item] = doc["items"]
    assert item["metadata"] == {"name": "", "creationTimestamp": None}
    [version] = item["versions"]
    assert (version["version"], version["freshness"]) == ("v1", "Current")
    resources = {r["resource"]: r for r in version["resources"]}
    assert set(resources) == {rt.plural for rt in catalog.resources_in("", "v1")}
    assert resources["namespaces"]["scope"] == "Cluster"
    assert resources["pods"]["scope"] == "Namespaced"
    assert resources["pods"]["responseKind"] == {
        "group": "",
        "version": "v1",
        "kind": "Pod",
    }
    assert resources["pods"]["shortNames"] == ["po"]
    assert resources["pods"]["subresources"] == [
        {
            "subresource": "status",
            "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
            "verbs": ["get", "patch", "update"],
        }
    ]
    assert "subresources" not in resources["configmaps"]


def test_aggregated_groups_mirror_legacy_discovery() -> None:
    doc = discovery.aggregated_discovery(core=False)
    legacy = discovery.api_group_list()["groups"]
    assert [i["metadata"]["name"] for i in doc["items"]] == [g["name"] for g in legacy]
    for item, group in zip(doc["items"], legacy, strict=True):
        assert [v["version"] for v in item["versions"]] == [v["version"] for v in group["versions"]]
        for version in item["versions"]:
            assert version["freshness"] == "Current"
            listed = discovery.api_resource_list(group["name"], version["version"])
            assert listed is not None
            plain = {r["name"]: r for r in listed["resources"] if "/" not in r["name"]}
            assert {r["resource"] for r in version["resources"]} == set(plain)
            for res in version["resources"]:
                legacy_entry = plain[res["resource"]]
                assert res["responseKind"] == {
                    "group": group["name"],
                    "version": version["version"],
                    "kind": legacy_entry["kind"],
                }
                assert res["scope"] == ("Namespaced" if legacy_entry["namespaced"] else "Cluster")
                assert res["singularResource"] == legacy_entry["singularName"]
                assert res["verbs"] == legacy_entry["verbs"]
                assert res.get("shortNames") == legacy_entry.get("shortNames")
                assert res.get("categories") == legacy_entry.get("categories")
    apps = next(i for i in doc["items"] if i["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert {s["subresource"]: s["responseKind"] for s in deployments["subresources"]} == {
        "status": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "scale": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
    }


# ---- OpenAPI v3 ----------------------------------------------------------------------------------


def openapi_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def test_openapi_index_lists_every_group_version_with_stable_hash() -> None:
    index = discovery.openapi_index()
    expected = {openapi_path(g, v) for g, v in served_group_versions()}
    assert set(index["paths"]) == expected
    for path, entry in index["paths"].items():
        assert re.fullmatch(
            rf"/openapi/v3/{re.escape(path)}\?hash=[0-9A-F]{{128}}",
            entry["serverRelativeURL"],
        )
    assert discovery.openapi_index() == index
    hashes = [e["serverRelativeURL"].split("hash=")[1] for e in index["paths"].values()]
    assert len(set(hashes)) == len(hashes)  # each document has its own content hash


@pytest.mark.parametrize(("group", "version"), served_group_versions())
def test_openapi_document_has_a_validating_patch_per_kind(group: str, version: str) -> None:
    doc = discovery.openapi_document(openapi_path(group, version))
    assert doc is not None
    doc = json.loads(json.dumps(doc))
    assert doc["openapi"].startswith("3.")
    assert doc["components"] == {"schemas": {}}
    found: dict[str, dict] = {}
    for path, item in doc["paths"].items():
        op = item["patch"]
        gvk = op["x-kubernetes-group-version-kind"]
        assert (gvk["group"], gvk["version"]) == (group, version)
        found[gvk["kind"]] = op
        query = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        assert {"fieldValidation", "fieldManager"} <= query
        assert op["x-kubernetes-action"] == "patch"
        declared = {p["name"] for p in item["parameters"] if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path))
    assert set(found) == {rt.kind for rt in catalog.resources_in(group, version)}
    operation_ids = [op["operationId"] for op in found.values()]
    assert len(set(operation_ids)) == len(operation_ids)


def test_openapi_item_paths_follow_scope() -> None:
    core = discovery.openapi_document("api/v1")
    assert core is not None
    assert "/api/v1/namespaces/{name}" in core["paths"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}" in core["paths"]
    gw = discovery.openapi_document("/apis/gateway.networking.k8s.io/v1beta1")
    assert gw is not None
    assert "/apis/gateway.networking.k8s.io/v1beta1/gatewayclasses/{name}" in gw["paths"]
    op = gw["paths"]["/apis/gateway.networking.k8s.io/v1beta1/namespaces/{namespace}/httproutes/{name}"]["patch"]
    assert op["operationId"] == "patchGatewayNetworkingK8sIoV1beta1NamespacedHTTPRoute"
    assert discovery.openapi_document("apis/apps/v2") is None
    assert discovery.openapi_document("api/v2") is None
    assert discovery.openapi_document("apis/apps") is None


# ---- real clients against a loopback stub --------------------------------------------------------

NOW = datetime.now(UTC)
CREATED = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_2_of_2() -> dict:
    running = {"running": {"startedAt": CREATED}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "splitdim-58c48cf87b-wgdfp",
            "namespace": "lab",
            "uid": "u1",
            "resourceVersion": "11",
            "creationTimestamp": CREATED,
            "labels": {"app": "splitdim"},
        },
        "spec": {
            "nodeName": "sandbox",
            "containers": [{"name": "splitdim"}, {"name": "istio-proxy"}],
        },
        "status": {
            "phase": "Running",
            "podIPs": [{"ip": "127.0.0.12"}],
            "containerStatuses": [
                {
                    "name": "splitdim",
                    "ready": True,
                    "restartCount": 0,
                    "state": running,
                },
                {
                    "name": "istio-proxy",
                    "ready": True,
                    "restartCount": 0,
                    "state": running,
                },
            ],
        },
    }


def gateway() -> dict:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {
            "name": "splitdim",
            "namespace": "lab",
            "uid": "u2",
            "creationTimestamp": CREATED,
        },
        "spec": {"gatewayClassName": "istio"},
        "status": {
            "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
            "conditions": [{"type": "Programmed", "status": "True"}],
        },
    }


@dataclass
class Stub:
    """What the stub serves (discovery from sandbox.discovery, lists as Tables) and what it saw."""

    aggregated: bool = True
    collections: dict[str, tuple[catalog.ResourceType, list[dict]]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path+query, header
    bodies: list[dict] = field(default_factory=list)
    base_url: str = ""

    def paths(self, method: str) -> list[str]:
        return [p for m, p, _ in self.requests if m == method]


def make_handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def reply(self, code: int, body: dict, content_type: str = "application/json") -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def not_found(self) -> None:
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
            }
            self.reply(404, status)

        def do_GET(self) -> None:
            accept = self.headers.get("Accept", "")
            stub.requests.append(("GET", self.path, accept))
            path = urlsplit(self.path).path.rstrip("/")
            if path == "/version":
                return self.reply(200, discovery.version_info())
            if path in ("/api", "/apis"):
                if stub.aggregated and discovery.wants_aggregated(accept):
                    doc = discovery.aggregated_discovery(core=path == "/api")
                    return self.reply(200, doc, discovery.AGGREGATED_CONTENT_TYPE)
                legacy = discovery.api_versions("127.0.0.1") if path == "/api" else discovery.api_group_list()
                return self.reply(200, legacy)
            if path == "/openapi/v3":
                return self.reply(200, discovery.openapi_index())
            if path.startswith("/openapi/v3/"):
                doc = discovery.openapi_document(path.removeprefix("/openapi/v3/"))
                return self.reply(200, doc) if doc else self.not_found()
            parts = path.strip("/").split("/")
            if parts[0] == "api" and len(parts) == 2:
                doc = discovery.api_resource_list("", parts[1])
                return self.reply(200, doc) if doc else self.not_found()
            if parts[0] == "apis" and len(parts) == 3:
                doc = discovery.api_resource_list(parts[1], parts[2])
                return self.reply(200, doc) if doc else self.not_found()
            return self.serve_objects(path, accept)

        def serve_objects(self, path: str, accept: str) -> None:
            collection_path, _, name = path.rpartition("/")
            if path in stub.collections:
                resource, items = stub.collections[path]
            elif collection_path in stub.collections:
                resource, all_items = stub.collections[collection_path]
                items = [o for o in all_items if o["metadata"]["name"] == name]
                if not items:
                    return self.not_found()
            else:
                return self.not_found()
            if not tables.wants_table(accept):
                return self.not_found()  # these tests only exercise Table output
            include = parse_qs(urlsplit(self.path).query).get("includeObject", ["Metadata"])[0]
            return self.reply(200, tables.to_table(resource, items, "100", datetime.now(UTC), include))

        def do_POST(self) -> None:
            stub.requests.append(("POST", self.path, self.headers.get("Content-Type", "")))
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            stub.bodies.append(body)
            body.setdefault("metadata", {}).update(uid="created", resourceVersion="101")
            self.reply(201, body)

    return Handler


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()
    pods = catalog.get("", "pods")
    state.collections = {
        "/api/v1/namespaces/lab/pods": (pods, [pod_2_of_2()]),
        "/api/v1/pods": (pods, [pod_2_of_2()]),
        "/apis/gateway.networking.k8s.io/v1/namespaces/lab/gateways": (
            catalog.get("gateway.networking.k8s.io", "gateways"),
            [gateway()],
        ),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_dynamic_client_resolves_every_kind(stub: Stub, tmp_path: Path) -> None:
    from kubernetes import client, dynamic
    from kubernetes.dynamic.exceptions import ResourceNotUniqueError

    config = client.Configuration()
    config.host = stub.base_url
    with client.ApiClient(config) as api:
        dc = dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
        # A lookup without a group walks every group with a v1: all of them must answer.
        namespaces = dc.resources.get(api_version="v1", kind="Namespace")
        assert namespaces.namespaced is False
        assert namespaces.path(name="lab") == "/api/v1/namespaces/lab"
        deployments = dc.resources.get(api_version="apps/v1", kind="Deployment")
        assert set(deployments.subresources) == {"status", "scale"}
        assert deployments.path(name="web", namespace="lab") == "/apis/apps/v1/namespaces/lab/deployments/web"
        for resource in catalog.RESOURCES:
            for version in resource.versions:
                found = dc.resources.get(api_version=resource.api_version(version), kind=resource.kind)
                assert (found.name, found.namespaced) == (
                    resource.plural,
                    resource.namespaced,
                )
                assert found.preferred is (version == resource.preferred_version)
        with pytest.raises(ResourceNotUniqueError):
            dc.resources.get(kind="Gateway")
    assert "/api" not in stub.paths("GET")  # DynamicClient hard-codes core/v1


def kubectl_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "kubectl"
    return str(beside_python) if beside_python.exists() else shutil.which("kubectl")


@pytest.fixture
def kubectl(stub: Stub, tmp_path: Path) -> Iterator:
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("kubectl is not installed")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: sandbox, cluster: {{server: '{stub.base_url}'}}}}]\n"
        "users: [{name: student, user: {}}]\n"
        "contexts: [{name: lab, context: {cluster: sandbox, user: student, namespace: lab}}]\n"
        "current-context: lab\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(tmp_path / "kube-cache"),
    }

    def run(*args: str) -> str:
        done = subprocess.run(
            [binary, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    yield run


def table_lines(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


@pytest.mark.parametrize("aggregated", [True, False], ids=["aggregated", "legacy"])
def test_kubectl_api_resources(stub: Stub, kubectl, aggregated: bool) -> None:
    stub.aggregated = aggregated
    rows = {tuple(r) for r in table_lines(kubectl("api-resources", "--no-headers"))}
    assert (
        "gateways",
        "gtw",
        "gateway.networking.k8s.io/v1",
        "true",
        "Gateway",
    ) in rows
    assert (
        "gatewayclasses",
        "gc",
        "gateway.networking.k8s.io/v1",
        "false",
        "GatewayClass",
    ) in rows
    assert ("deployments", "deploy", "apps/v1", "true", "Deployment") in rows
    assert ("namespaces", "ns", "v1", "false", "Namespace") in rows
    assert (
        "virtualservices",
        "vs",
        "networking.istio.io/v1",
        "true",
        "VirtualService",
    ) in rows
    per_group_version = [p for p in stub.paths("GET") if p.startswith(("/apis/", "/api/v1"))]
    if aggregated:
        assert per_group_version == []  # the aggregated answer was accepted
    else:
        assert any(p.startswith("/apis/apps/v1") for p in per_group_version)


def test_kubectl_apply_hands_validation_to_the_server(stub: Stub, kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "lab.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: splitdim, namespace: lab}\n"
        "spec:\n  selector: {matchLabels: {app: splitdim}}\n"
        "  template:\n    metadata: {labels: {app: splitdim}}\n"
        "    spec: {containers: [{name: splitdim, image: localhost/splitdim:latest}]}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\n"
        "metadata: {name: kvstore-500, namespace: lab}\nspec: {hosts: [kvstore]}\n"
    )
    out = kubectl("apply", "-f", str(manifest))
    assert "deployment.apps/splitdim created" in out
    assert "virtualservice.networking.istio.io/kvstore-500 created" in out
    posts = stub.paths("POST")
    assert [urlsplit(p).path for p in posts] == [
        "/apis/apps/v1/namespaces/lab/deployments",
        "/apis/networking.istio.io/v1alpha3/namespaces/lab/virtualservices",
    ]
    assert all(parse_qs(urlsplit(p).query).get("fieldValidation") == ["Strict"] for p in posts)
    assert any(p.startswith("/openapi/v3") for p in stub.paths("GET"))


def test_kubectl_get_prints_server_side_tables(stub: Stub, kubectl) -> None:
    lines = table_lines(kubectl("get", "pods"))
    assert lines[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1][:4] == ["splitdim-58c48cf87b-wgdfp", "2/2", "Running", "0"]
    assert re.fullmatch(r"\d+m\d*s?", lines[1][4])
    wide = table_lines(kubectl("get", "pods", "-o", "wide"))
    assert wide[0] == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    assert wide[1][5:] == ["127.0.0.12", "sandbox", "<none>", "<none>"]
    every_namespace = table_lines(kubectl("get", "pods", "-A", "--show-labels"))
    assert every_namespace[0][0] == "NAMESPACE"
    assert every_namespace[1][0] == "lab"  # from rows[].object, the PartialObjectMetadata
    assert every_namespace[1][-1] == "app=splitdim"
    single = table_lines(kubectl("get", "pod", "splitdim-58c48cf87b-wgdfp", "--no-headers"))
    assert single[0][1] == "2/2"
    gateways = table_lines(kubectl("get", "gtw"))
    assert gateways[0] == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
    assert gateways[1][:4] == ["splitdim", "istio", "127.0.0.1", "True"]
