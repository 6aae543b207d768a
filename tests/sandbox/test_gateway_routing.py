"""HTTPRoute matching at the ingress gateway: precedence, hostnames, methods, weights (pure functions)."""

from __future__ import annotations

import pytest

from sandbox import catalog
from sandbox.gateway import host_matches, path_matches, pick_backend, route_request
from sandbox.store import Store

ROUTES = catalog.get("gateway.networking.k8s.io", "httproutes")


def route(name: str, rules: list[dict], hostnames: list[str] | None = None, created: str = "2026-01-01T00:00:00Z"):
    spec = {"parentRefs": [{"name": "gw"}], "rules": rules}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"metadata": {"name": name, "namespace": "lab", "creationTimestamp": created}, "spec": spec}


def store_with(*routes: dict) -> Store:
    store = Store()
    for r in routes:
        store.create(ROUTES, r)
        store.get(ROUTES, "lab", r["metadata"]["name"])["metadata"]["creationTimestamp"] = r["metadata"][
            "creationTimestamp"
        ]
    return store


def backend(name: str) -> list[dict]:
    return [{"name": name, "port": 80}]


def decide(store: Store, path: str = "/", method: str = "GET", headers=None, host: str = "1.2.3.4"):
    result = route_request(store, "lab", "gw", "http", method, path, headers or {}, {}, host)
    return result["name"] if isinstance(result, dict) else result


def test_the_labs_header_rule_goes_first():
    store = store_with(
        route(
            "splitdim",
            [
                {"matches": [{"headers": [{"name": "user", "value": "test"}]}], "backendRefs": backend("splitdim-2")},
                {"backendRefs": backend("splitdim")},
            ],
        )
    )
    assert decide(store, headers={"user": "test"}) == "splitdim-2"
    assert decide(store, headers={"user": "other"}) == "splitdim"
    assert decide(store) == "splitdim"


def test_precedence_exact_then_longest_prefix_then_method_then_headers():
    store = store_with(
        route(
            "a", [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": backend("prefix")}]
        ),
        route(
            "b",
            [{"matches": [{"path": {"type": "Exact", "value": "/api/list"}}], "backendRefs": backend("exact")}],
            created="2026-02-01T00:00:00Z",
        ),
        route(
            "c",
            [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/api/acc"}, "method": "POST"}],
                    "backendRefs": backend("post"),
                },
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api/acc"}}], "backendRefs": backend("acc")},
            ],
        ),
    )
    assert decide(store, "/api/list") == "exact"
    assert decide(store, "/api/clear") == "prefix"
    assert decide(store, "/api/acc/1", "POST") == "post"
    assert decide(store, "/api/acc/1") == "acc"
    assert decide(store, "/other") is None


def test_hostnames_restrict_a_route():
    store = store_with(
        route("other", [{"backendRefs": backend("other")}], hostnames=["*.example.com"]),
        route("main", [{"backendRefs": backend("main")}], created="2026-03-01T00:00:00Z"),
    )
    assert decide(store, host="shop.example.com:80") == "other"
    assert decide(store, host="example.com") == "main"
    assert decide(store, host="10.0.0.1") == "main"


@pytest.mark.parametrize(
    ("match", "path", "ok"),
    [
        ({"type": "PathPrefix", "value": "/api"}, "/api", True),
        ({"type": "PathPrefix", "value": "/api"}, "/api/x", True),
        ({"type": "PathPrefix", "value": "/api"}, "/apix", False),
        ({"type": "Exact", "value": "/api"}, "/api/", False),
        ({"type": "RegularExpression", "value": "/api/[a-z]+"}, "/api/list", True),
        ({"type": "RegularExpression", "value": "/api/[a-z]+"}, "/api/list/2", False),
    ],
)
def test_path_matches(match, path, ok):
    assert path_matches(match, path) is ok


def test_weighted_backends_and_rule_without_backend():
    refs = [{"name": "a", "weight": 90}, {"name": "b", "weight": 10}, {"name": "c", "weight": 0}]
    values = [i / 1000 for i in range(1000)]
    picks = [pick_backend(refs, lambda v=v: v)["name"] for v in values]
    assert picks.count("a") == 900 and picks.count("b") == 100 and "c" not in picks
    store = store_with(route("empty", [{"matches": [{"path": {"type": "Exact", "value": "/x"}}]}]))
    assert decide(store, "/x") is False
    assert host_matches(None, "anything")
