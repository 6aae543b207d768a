"""Istio routing semantics for the sandbox's sidecars: VirtualService / DestinationRule selection and
matching, PeerAuthentication precedence, and what Istio's webhook and the Gateway API CRDs refuse."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
import yaml
from multidict import CIMultiDict

from sandbox import catalog
from sandbox.mesh import policy, routing, validation
from sandbox.mesh.routing import Retries, RouteDecision
from sandbox.store import Store

VS = catalog.get("networking.istio.io", "virtualservices")
DR = catalog.get("networking.istio.io", "destinationrules")
PA = catalog.get("security.istio.io", "peerauthentications")
MANIFESTS = Path(__file__).parent / "manifests"
KINDS = {"VirtualService": VS, "DestinationRule": DR, "PeerAuthentication": PA}


def fqdn(name: str, ns: str = "lab") -> str:
    return f"{name}.{ns}.svc.cluster.local"


def manifest(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def obj(kind: str, name: str, ns: str, spec: dict, created: str = "2024-01-01T00:00:00Z") -> dict:
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "spec": spec,
    }


def store_with(*objects: dict) -> Store:
    store = Store()
    for o in objects:
        store.create(KINDS[o["kind"]], copy.deepcopy(o))
    return store


def lab_object(name: str, ns: str = "lab") -> dict:
    """A lab manifest as `kubectl apply -n <ns>` would store it."""
    (doc,) = [d for d in manifest(name) if d["kind"] in KINDS]
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = ns
    return doc


def route_one(rule: dict, **kw) -> RouteDecision:
    vs = obj("VirtualService", "vs", "lab", {"hosts": ["kvstore"], "http": [rule]})
    args = {"method": "GET", "path": "/", "headers": {}} | kw
    return routing.route(vs, [], fqdn("kvstore"), 80, args["method"], args["path"], args["headers"])


# ---- the lab's fault-injection VirtualService ----------------------------------------------------------
LAB_FAULT_CASES = [
    # method, path, abort, rule index
    ("GET", "/api/list", (500, 10.0), 0),
    ("GET", "/api/list?limit=5", (500, 10.0), 0),  # the query string takes no part in uri matching
    ("GET", "/api/get?key=a", None, 1),
    ("POST", "/api/put", None, 1),
    ("GET", "/api/list/more", None, 1),  # exact means exact
]


@pytest.mark.parametrize(("method", "path", "abort", "index"), LAB_FAULT_CASES)
def test_lab_kvstore_500(method: str, path: str, abort: tuple[int, float] | None, index: int) -> None:
    store = store_with(lab_object("fault.yaml"))
    vs = routing.find_virtual_service(store, "lab", fqdn("kvstore"), 8080)
    assert vs is not None and vs["metadata"]["name"] == "kvstore-500"
    decision = routing.route(vs, [], fqdn("kvstore"), 8080, method, path, {})
    assert decision.abort == abort
    assert decision.rule_index == index
    assert decision.destination_host == fqdn("kvstore")
    assert not decision.no_route and decision.delay is None and decision.retries is None


def test_no_virtual_service_is_the_default_route() -> None:
    store = store_with(lab_object("fault.yaml"))
    assert routing.find_virtual_service(store, "lab", fqdn("splitdim"), 80) is None
    decision = routing.route(None, [], fqdn("splitdim"), 80, "GET", "/", {})
    assert decision == RouteDecision(destination_host=fqdn("splitdim"))


# ---- which VirtualService applies ----------------------------------------------------------------------
OLD, NEW = "2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z"
FIND_CASES = [
    # id, virtual services, client namespace, host, expected name
    (
        "short-name-own-ns",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"]})],
        "lab",
        fqdn("kvstore"),
        "a",
    ),
    (
        "short-name-is-not-other-ns",
        [obj("VirtualService", "a", "other", {"hosts": ["kvstore"]})],
        "lab",
        fqdn("kvstore"),
        None,
    ),
    (
        "fqdn-from-other-ns",
        [obj("VirtualService", "a", "other", {"hosts": [fqdn("kvstore")]})],
        "lab",
        fqdn("kvstore"),
        "a",
    ),
    (
        "visible-from-other-ns",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"]})],
        "other",
        fqdn("kvstore"),
        "a",
    ),
    (
        "two-label-name-is-literal",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore.lab"]})],
        "lab",
        fqdn("kvstore"),
        None,
    ),
    (
        "export-dot-own",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"], "exportTo": ["."]})],
        "lab",
        fqdn("kvstore"),
        "a",
    ),
    (
        "export-dot-other",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"], "exportTo": ["."]})],
        "other",
        fqdn("kvstore"),
        None,
    ),
    (
        "export-named",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"], "exportTo": ["other"]})],
        "other",
        fqdn("kvstore"),
        "a",
    ),
    (
        "export-named-not-me",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"], "exportTo": ["other"]})],
        "third",
        fqdn("kvstore"),
        None,
    ),
    (
        "export-none",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"], "exportTo": ["~"]})],
        "lab",
        fqdn("kvstore"),
        None,
    ),
    (
        "gateway-only",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"], "gateways": ["gw"]})],
        "lab",
        fqdn("kvstore"),
        None,
    ),
    (
        "gateway-and-mesh",
        [obj("VirtualService", "a", "lab", {"hosts": ["kvstore"], "gateways": ["gw", "mesh"]})],
        "lab",
        fqdn("kvstore"),
        "a",
    ),
    (
        "wildcard",
        [obj("VirtualService", "a", "lab", {"hosts": ["*.lab.svc.cluster.local"]})],
        "lab",
        fqdn("kvstore"),
        "a",
    ),
    (
        "wildcard-other-suffix",
        [obj("VirtualService", "a", "lab", {"hosts": ["*.other.svc.cluster.local"]})],
        "lab",
        fqdn("kvstore"),
        None,
    ),
    (
        "exact-beats-older-wildcard",
        [
            obj("VirtualService", "wild", "lab", {"hosts": ["*.lab.svc.cluster.local"]}, OLD),
            obj("VirtualService", "exact", "lab", {"hosts": ["kvstore"]}, NEW),
        ],
        "lab",
        fqdn("kvstore"),
        "exact",
    ),
    (
        "longer-wildcard-wins",
        [
            obj("VirtualService", "short", "lab", {"hosts": ["*.svc.cluster.local"]}, OLD),
            obj("VirtualService", "long", "lab", {"hosts": ["*.lab.svc.cluster.local"]}, NEW),
        ],
        "lab",
        fqdn("kvstore"),
        "long",
    ),
    (
        "own-namespace-beats-specificity",
        [
            obj("VirtualService", "theirs", "other", {"hosts": [fqdn("kvstore")]}, OLD),
            obj("VirtualService", "mine", "lab", {"hosts": ["*.lab.svc.cluster.local"]}, NEW),
        ],
        "lab",
        fqdn("kvstore"),
        "mine",
    ),
    (
        "their-own-namespace",
        [
            obj("VirtualService", "theirs", "other", {"hosts": [fqdn("kvstore")]}, NEW),
            obj("VirtualService", "mine", "lab", {"hosts": ["kvstore"]}, OLD),
        ],
        "other",
        fqdn("kvstore"),
        "theirs",
    ),
    (
        "oldest-wins",
        [
            obj("VirtualService", "a-new", "lab", {"hosts": ["kvstore"]}, NEW),
            obj("VirtualService", "z-old", "lab", {"hosts": ["kvstore"]}, OLD),
        ],
        "lab",
        fqdn("kvstore"),
        "z-old",
    ),
]


@pytest.mark.parametrize(
    ("vss", "client_ns", "host", "expected"), [c[1:] for c in FIND_CASES], ids=[c[0] for c in FIND_CASES]
)
def test_find_virtual_service(vss: list[dict], client_ns: str, host: str, expected: str | None) -> None:
    found = routing.find_virtual_service(store_with(*vss), client_ns, host, 80)
    assert (found["metadata"]["name"] if found else None) == expected


# ---- request matching ----------------------------------------------------------------------------------
MATCH_RULES = [
    {"match": [{"headers": {"end-user": {"exact": "jason"}}}]},  # 0
    {"match": [{"uri": {"prefix": "/api/put"}, "method": {"exact": "POST"}}]},  # 1
    {"match": [{"uri": {"regex": "/api/v[0-9]+/items"}}]},  # 2
    {"match": [{"headers": {"x-canary": {}}}]},  # 3: presence
    {"match": [{"headers": {"user-agent": {"prefix": "curl/"}}}]},  # 4
    {"match": [{"headers": {"x-version": {"regex": "v[12]"}}}]},  # 5
    {"match": [{"queryParams": {"debug": {"exact": "1"}}}]},  # 6
    {"match": [{"uri": {"exact": "/Admin"}, "ignoreUriCase": True}]},  # 7
    {"match": [{"uri": {"prefix": "/ws"}, "withoutHeaders": {"upgrade": {}}}]},  # 8
    {"match": [{"uri": {"prefix": "/first"}}, {"uri": {"prefix": "/second"}}]},  # 9: entries are ORed
    {"match": [{"port": 9090}]},  # 10
    {"match": [{"sourceLabels": {"app": "splitdim"}}]},  # 11
    {"match": [{"uri": {"prefix": "/env"}, "withoutHeaders": {"x-env": {"exact": "prod"}}}]},  # 12
    {"match": [{"authority": {"prefix": "kvstore:"}}]},  # 13
    {"match": [{"sourceNamespace": "ops"}]},  # 14
]
for _rule in MATCH_RULES:
    _rule["route"] = [{"destination": {"host": "kvstore"}}]
MATCH_VS = obj("VirtualService", "matches", "lab", {"hosts": ["kvstore"], "http": MATCH_RULES})

MATCH_CASES = [
    # id, method, path, headers, extra keyword arguments, expected rule index (None: no route)
    ("header-exact", "GET", "/", {"End-User": "jason"}, {}, 0),
    ("header-exact-other-value", "GET", "/", {"end-user": "json"}, {}, None),
    ("method-and-prefix", "POST", "/api/put/a", {}, {}, 1),
    ("method-mismatch", "GET", "/api/put/a", {}, {}, None),
    ("regex-full", "GET", "/api/v2/items", {}, {}, 2),
    ("regex-is-anchored", "GET", "/api/v2/items/7", {}, {}, None),
    ("header-presence", "GET", "/", {"x-canary": ""}, {}, 3),
    ("header-prefix", "GET", "/", {"User-Agent": "curl/8.5"}, {}, 4),
    ("header-prefix-mismatch", "GET", "/", {"User-Agent": "python-httpx"}, {}, None),
    ("header-regex", "GET", "/", {"x-version": "v2"}, {}, 5),
    ("header-regex-anchored", "GET", "/", {"x-version": "v21"}, {}, None),
    ("query-in-path", "GET", "/q?debug=1&x=2", {}, {}, 6),
    ("query-other-value", "GET", "/q?debug=2", {}, {}, None),
    ("query-keyword", "GET", "/q", {}, {"query": {"debug": "1"}}, 6),
    ("ignore-uri-case", "GET", "/aDMIN", {}, {}, 7),
    ("without-header-absent", "GET", "/ws", {}, {}, 8),
    ("without-header-present", "GET", "/ws", {"Upgrade": "websocket"}, {}, None),
    ("or-of-entries", "GET", "/second/x", {}, {}, 9),
    ("port", "GET", "/", {}, {"port": 9090}, 10),
    ("source-labels", "GET", "/", {}, {"source_labels": {"app": "splitdim", "version": "v1"}}, 11),
    ("source-labels-other", "GET", "/", {}, {"source_labels": {"app": "curl"}}, None),
    ("without-value-absent", "GET", "/env", {}, {}, 12),
    ("without-value-other", "GET", "/env", {"x-env": "staging"}, {}, 12),
    ("without-value-equal", "GET", "/env", {"x-env": "prod"}, {}, None),
    ("authority", "GET", "/", {"Host": "kvstore:8080"}, {}, 13),
    ("source-namespace", "GET", "/", {}, {"client_namespace": "ops"}, 14),
    ("first-match-wins", "POST", "/api/put", {"end-user": "jason"}, {}, 0),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "kw", "expected"),
    [c[1:] for c in MATCH_CASES],
    ids=[c[0] for c in MATCH_CASES],
)
def test_rule_matching(method: str, path: str, headers: dict, kw: dict, expected: int | None) -> None:
    kw = dict(kw)
    port = kw.pop("port", 80)
    decision = routing.route(MATCH_VS, [], fqdn("kvstore"), port, method, path, CIMultiDict(headers), **kw)
    assert decision.rule_index == expected
    assert decision.no_route is (expected is None)


# ---- weights and subsets -------------------------------------------------------------------------------
SUBSETS_DR = obj(
    "DestinationRule",
    "kvstore",
    "lab",
    {
        "host": "kvstore",
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}],
    },
)


def split(w1: int, w2: int) -> dict:
    return {
        "route": [
            {"destination": {"host": "kvstore", "subset": "v1"}, "weight": w1},
            {"destination": {"host": "kvstore", "subset": "v2"}, "weight": w2},
        ]
    }


@pytest.mark.parametrize(("w1", "w2"), [(80, 20), (50, 50), (10, 90), (100, 0)])
def test_weighted_split(w1: int, w2: int) -> None:
    vs = obj("VirtualService", "split", "lab", {"hosts": ["kvstore"], "http": [split(w1, w2)]})
    rnd = random.Random(1234).random
    n = 20000
    picks = [routing.route(vs, [SUBSETS_DR], fqdn("kvstore"), 80, "GET", "/", {}, rnd) for _ in range(n)]
    share = sum(p.subset == "v2" for p in picks) / n
    assert abs(share - w2 / 100) < 0.015
    assert all(p.subset_labels == {"version": p.subset} for p in picks)


def test_single_destination_needs_no_weight() -> None:
    decision = route_one({"route": [{"destination": {"host": "kvstore", "subset": "v1", "port": {"number": 9000}}}]})
    assert (decision.subset, decision.port) == ("v1", 9000)
    assert decision.missing_subset  # route_one passes no DestinationRule


def test_subset_labels_and_missing_subset() -> None:
    vs = obj("VirtualService", "v", "lab", {"hosts": ["kvstore"], "http": [split(0, 100)]})
    found = routing.route(vs, [SUBSETS_DR], fqdn("kvstore"), 80, "GET", "/", {})
    assert (found.subset, found.subset_labels, found.missing_subset) == ("v2", {"version": "v2"}, False)
    vs["spec"]["http"][0]["route"][1]["destination"]["subset"] = "v3"
    missing = routing.route(vs, [SUBSETS_DR], fqdn("kvstore"), 80, "GET", "/", {})
    assert (missing.subset, missing.subset_labels, missing.missing_subset) == ("v3", {}, True)


def test_route_to_another_host_uses_that_hosts_rule() -> None:
    """The lab's request-routing step as a VirtualService: `user: test` goes to splitdim-2's v2 pods."""
    other_dr = obj(
        "DestinationRule",
        "splitdim-2",
        "lab",
        {"host": "splitdim-2", "subsets": [{"name": "v2", "labels": {"app": "splitdim-2"}}]},
    )
    store = store_with(SUBSETS_DR, other_dr)
    vs = obj(
        "VirtualService",
        "splitdim",
        "lab",
        {
            "hosts": ["splitdim"],
            "http": [
                {
                    "match": [{"headers": {"user": {"exact": "test"}}}],
                    "route": [{"destination": {"host": "splitdim-2", "subset": "v2"}}],
                },
                {"route": [{"destination": {"host": "splitdim"}}]},
            ],
        },
    )
    rules = store.list(DR)
    test_user = routing.route(vs, rules, fqdn("splitdim"), 80, "GET", "/", {"user": "test"}, client_namespace="lab")
    assert (test_user.destination_host, test_user.subset_labels) == (
        fqdn("splitdim-2"),
        {"app": "splitdim-2"},
    )
    others = routing.route(vs, rules, fqdn("splitdim"), 80, "GET", "/", {"user": "x"}, client_namespace="lab")
    assert (others.destination_host, others.subset, others.rule_index) == (fqdn("splitdim"), None, 1)


# ---- which DestinationRule applies ---------------------------------------------------------------------
def dr(name: str, ns: str, host: str, created: str = OLD, **spec) -> dict:
    return obj("DestinationRule", name, ns, {"host": host, **spec}, created)


DR_CASES = [
    # id, rules, client namespace, expected name
    ("root-only", [dr("root", "istio-system", "*.lab.svc.cluster.local")], "other", "root"),
    (
        "service-ns-beats-root",
        [dr("root", "istio-system", fqdn("kvstore")), dr("svc", "lab", "kvstore")],
        "other",
        "svc",
    ),
    (
        "client-ns-beats-service-ns",
        [dr("svc", "lab", "kvstore"), dr("mine", "other", fqdn("kvstore"), NEW)],
        "other",
        "mine",
    ),
    ("unrelated-ns-ignored", [dr("third", "third", fqdn("kvstore"))], "other", None),
    (
        "private-rule-hidden",
        [dr("svc", "lab", "kvstore", exportTo=["."]), dr("root", "istio-system", "*.svc.cluster.local")],
        "other",
        "root",
    ),
    ("private-rule-own-ns", [dr("svc", "lab", "kvstore", exportTo=["."])], "lab", "svc"),
    (
        "exact-beats-wildcard",
        [dr("wild", "lab", "*.lab.svc.cluster.local"), dr("exact", "lab", "kvstore", NEW)],
        "lab",
        "exact",
    ),
    ("oldest-wins", [dr("b-new", "lab", "kvstore", NEW), dr("a-old", "lab", "kvstore", OLD)], "lab", "a-old"),
    ("other-host", [dr("svc", "lab", "splitdim")], "lab", None),
]


@pytest.mark.parametrize(("rules", "client_ns", "expected"), [c[1:] for c in DR_CASES], ids=[c[0] for c in DR_CASES])
def test_find_destination_rule(rules: list[dict], client_ns: str, expected: str | None) -> None:
    found = routing.find_destination_rule(store_with(*rules), client_ns, fqdn("kvstore"))
    assert (found["metadata"]["name"] if found else None) == expected


# ---- faults, timeouts, retries, headers, redirects -----------------------------------------------------
ROUTE = [{"destination": {"host": "kvstore"}}]
DECISION_CASES = [
    # id, rule, attribute, expected value
    (
        "abort-percentage",
        {"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 12.5}}}},
        "abort",
        (503, 12.5),
    ),
    ("abort-unset-percentage-is-zero", {"fault": {"abort": {"httpStatus": 503}}}, "abort", (503, 0.0)),
    (
        "delay",
        {"fault": {"delay": {"fixedDelay": "1.5s", "percentage": {"value": 100}}}},
        "delay",
        (1.5, 100.0),
    ),
    (
        "delay-deprecated-percent",
        {"fault": {"delay": {"fixedDelay": "250ms", "percent": 30}}},
        "delay",
        (0.25, 30.0),
    ),
    ("timeout", {"timeout": "2s"}, "timeout", 2.0),
    ("no-timeout", {}, "timeout", None),
    (
        "retries",
        {"retries": {"attempts": 3, "perTryTimeout": "500ms", "retryOn": "5xx,connect-failure"}},
        "retries",
        Retries(3, 0.5, frozenset({"5xx", "connect-failure"})),
    ),
    (
        "retries-status-codes",
        {"retries": {"attempts": 1, "retryOn": "503,reset"}},
        "retries",
        Retries(1, None, frozenset({"503", "reset", "retriable-status-codes"})),
    ),
    (
        "retries-default-conditions",
        {"retries": {"attempts": 4}},
        "retries",
        Retries(4, None, routing.DEFAULT_RETRY_ON),
    ),
    ("retries-disabled", {"retries": {"attempts": 0}}, "retries", Retries(0, None, frozenset())),
    ("retries-unset", {}, "retries", None),
    ("rule-name", {"name": "primary"}, "rule_name", "primary"),
]


@pytest.mark.parametrize(
    ("rule", "attr", "expected"), [c[1:] for c in DECISION_CASES], ids=[c[0] for c in DECISION_CASES]
)
def test_route_settings(rule: dict, attr: str, expected: object) -> None:
    decision = route_one({**rule, "route": ROUTE})
    assert getattr(decision, attr) == expected


def test_header_manipulation() -> None:
    rule = {
        "headers": {
            "request": {"set": {"x-a": "rule"}, "remove": ["x-drop"]},
            "response": {"add": {"x-served-by": "mesh"}},
        },
        "route": [
            {
                "destination": {"host": "kvstore"},
                "headers": {"request": {"set": {"x-a": "dest", "x-b": "dest"}, "add": {"x-multi": "2"}}},
            }
        ],
    }
    decision = route_one(rule)
    headers = CIMultiDict([("X-A", "client"), ("X-Drop", "1"), ("X-Multi", "1")])
    decision.request_headers.apply(headers)
    assert headers.getall("x-a") == ["rule"]  # the rule-level set wins over the destination's
    assert headers["x-b"] == "dest"
    assert "x-drop" not in headers
    assert headers.getall("x-multi") == ["1", "2"]
    response = CIMultiDict()
    decision.response_headers.apply(response)
    assert response["x-served-by"] == "mesh"
    assert decision.request_headers and not route_one({"route": ROUTE}).request_headers


REWRITE_CASES = [
    # id, match, rewrite uri, request path, expected path
    ("prefix", [{"uri": {"prefix": "/v1/"}}], "/api/", "/v1/list?x=1", "/api/list?x=1"),
    ("exact", [{"uri": {"exact": "/old"}}], "/new", "/old", "/new"),
    ("no-match-block", None, "/root", "/anything", "/root"),
]


@pytest.mark.parametrize(
    ("match", "uri", "path", "expected"), [c[1:] for c in REWRITE_CASES], ids=[c[0] for c in REWRITE_CASES]
)
def test_rewrite(match: list | None, uri: str, path: str, expected: str) -> None:
    rule = {"rewrite": {"uri": uri, "authority": "kv.example"}, "route": ROUTE} | ({"match": match} if match else {})
    decision = route_one(rule, path=path)
    assert (decision.rewrite_path, decision.rewrite_authority) == (expected, "kv.example")


def test_redirect_and_direct_response() -> None:
    redirect = route_one({"redirect": {"uri": "/v2/", "redirectCode": 302}}, headers={"Host": "kvstore"})
    assert redirect.redirect == (302, "http://kvstore/v2/")
    direct = route_one({"directResponse": {"status": 418, "body": {"string": "teapot"}}})
    assert direct.direct_response == (418, "teapot")
    assert not direct.no_route


def test_fires_rolls_the_percentage() -> None:
    rnd = random.Random(5).random
    hits = sum(routing.fires(10.0, rnd) for _ in range(20000))
    assert abs(hits / 20000 - 0.10) < 0.01
    assert not routing.fires(0.0, lambda: 0.0)
    assert routing.fires(100.0, lambda: 0.9999)


# ---- durations and regexes -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("0", 0.0),
        (".5s", 0.5),
        ("100us", 1e-4),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert routing.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "5 s", "1d", "s", "1.5", "abc", "1s2"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        routing.parse_duration(text)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(?=x)a", "lookaround"),
        ("(?<!x)a", "lookaround"),
        ("(a)\\1", "backreference"),
        ("(?P<n>a)(?P=n)", "backreference"),
        ("(?>a)", "atomic"),
        ("a++", "possessive"),
        ("(", "missing"),
    ],
)
def test_regex_outside_re2_is_refused(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        routing.compile_regex(pattern)


@pytest.mark.parametrize(
    ("pattern", "text"), [("(?<ver>v[0-9])", "v1"), ("[*+]+", "*+"), ("\\++", "++"), ("a\\z", "a")]
)
def test_re2_spellings_work(pattern: str, text: str) -> None:
    assert routing.compile_regex(pattern).fullmatch(text)


# ---- PeerAuthentication --------------------------------------------------------------------------------
def pa(name: str, ns: str, mode: str | None = None, selector: dict | None = None, created: str = OLD, **spec) -> dict:
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    return obj("PeerAuthentication", name, ns, spec, created)


KV = {"app": "kvstore", "version": "v1"}
SD = {"app": "splitdim"}
PA_CASES = [
    # id, policies, pod labels, port, expected mode
    ("nothing-is-permissive", [], KV, None, "PERMISSIVE"),
    ("lab-namespace-strict", [lab_object("mtls.yaml")], KV, 8080, "STRICT"),
    ("mesh-wide", [pa("default", "istio-system", "STRICT")], KV, None, "STRICT"),
    (
        "namespace-over-mesh",
        [pa("default", "istio-system", "STRICT"), pa("ns", "lab", "PERMISSIVE")],
        KV,
        None,
        "PERMISSIVE",
    ),
    (
        "namespace-unset-inherits-mesh",
        [pa("default", "istio-system", "STRICT"), pa("ns", "lab", "UNSET")],
        KV,
        None,
        "STRICT",
    ),
    (
        "namespace-no-mtls-inherits",
        [pa("default", "istio-system", "DISABLE"), pa("ns", "lab")],
        KV,
        None,
        "DISABLE",
    ),
    (
        "workload-over-namespace",
        [pa("ns", "lab", "STRICT"), pa("kv", "lab", "DISABLE", {"app": "kvstore"})],
        KV,
        None,
        "DISABLE",
    ),
    (
        "workload-selector-misses",
        [pa("ns", "lab", "STRICT"), pa("kv", "lab", "DISABLE", {"app": "kvstore"})],
        SD,
        None,
        "STRICT",
    ),
    (
        "workload-unset-inherits",
        [pa("ns", "lab", "STRICT"), pa("kv", "lab", "UNSET", {"app": "kvstore"})],
        KV,
        None,
        "STRICT",
    ),
    (
        "workload-unset-to-mesh",
        [pa("m", "istio-system", "DISABLE"), pa("kv", "lab", "UNSET", {"app": "kvstore"})],
        KV,
        None,
        "DISABLE",
    ),
    (
        "port-level-override",
        [pa("kv", "lab", "STRICT", {"app": "kvstore"}, portLevelMtls={"8080": {"mode": "DISABLE"}})],
        KV,
        8080,
        "DISABLE",
    ),
    (
        "port-level-other-port",
        [pa("kv", "lab", "STRICT", {"app": "kvstore"}, portLevelMtls={"8080": {"mode": "DISABLE"}})],
        KV,
        9090,
        "STRICT",
    ),
    (
        "port-level-no-port-given",
        [pa("kv", "lab", "STRICT", {"app": "kvstore"}, portLevelMtls={"8080": {"mode": "DISABLE"}})],
        KV,
        None,
        "STRICT",
    ),
    (
        "port-level-unset",
        [pa("kv", "lab", "PERMISSIVE", {"app": "kvstore"}, portLevelMtls={"8080": {"mode": "UNSET"}})],
        KV,
        8080,
        "PERMISSIVE",
    ),
    (
        "port-level-needs-selector",
        [pa("ns", "lab", "STRICT", portLevelMtls={"8080": {"mode": "DISABLE"}})],
        KV,
        8080,
        "STRICT",
    ),
    (
        "oldest-namespace-wide",
        [pa("b", "lab", "DISABLE", created=NEW), pa("a", "lab", "STRICT", created=OLD)],
        KV,
        None,
        "STRICT",
    ),
    (
        "oldest-workload",
        [
            pa("new", "lab", "STRICT", {"app": "kvstore"}, NEW),
            pa("old", "lab", "DISABLE", {"version": "v1"}, OLD),
        ],
        KV,
        None,
        "DISABLE",
    ),
    ("other-namespace-ignored", [pa("ns", "other", "STRICT")], KV, None, "PERMISSIVE"),
    (
        "root-selector-not-mesh-wide",
        [pa("sel", "istio-system", "STRICT", {"app": "kvstore"})],
        KV,
        None,
        "PERMISSIVE",
    ),
    ("empty-selector-is-namespace-wide", [pa("ns", "lab", "STRICT", {})], SD, None, "STRICT"),
]


@pytest.mark.parametrize(("pas", "labels", "port", "expected"), [c[1:] for c in PA_CASES], ids=[c[0] for c in PA_CASES])
def test_mtls_mode(pas: list[dict], labels: dict, port: int | None, expected: str) -> None:
    assert policy.mtls_mode(store_with(*pas), "lab", labels, port) == expected


TLS_DR = dr("kv", "lab", "kvstore", trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}})
PLAIN_DR = dr(
    "kv",
    "lab",
    "kvstore",
    trafficPolicy={
        "tls": {"mode": "ISTIO_MUTUAL"},
        "portLevelSettings": [{"port": {"number": 9090}, "tls": {"mode": "DISABLE"}}],
    },
)
CLIENT_CASES = [
    # id, policies, destination has a sidecar, port, destination rule, expected
    ("sidecar-permissive", [], True, 8080, None, True),
    ("sidecar-strict", [pa("ns", "lab", "STRICT")], True, 8080, None, True),
    ("no-sidecar", [pa("ns", "lab", "STRICT")], False, 8080, None, False),
    ("disabled", [pa("ns", "lab", "DISABLE")], True, 8080, None, False),
    (
        "port-disabled",
        [pa("kv", "lab", "STRICT", {"app": "kvstore"}, portLevelMtls={"8080": {"mode": "DISABLE"}})],
        True,
        8080,
        None,
        False,
    ),
    ("rule-forces-mtls", [], False, 8080, TLS_DR, True),
    ("rule-port-disables", [], True, 9090, PLAIN_DR, False),
    ("rule-port-other", [], True, 8080, PLAIN_DR, True),
]


@pytest.mark.parametrize(
    ("pas", "sidecar", "port", "rule", "expected"),
    [c[1:] for c in CLIENT_CASES],
    ids=[c[0] for c in CLIENT_CASES],
)
def test_client_uses_mtls(pas: list[dict], sidecar: bool, port: int, rule: dict | None, expected: bool) -> None:
    assert policy.client_uses_mtls(store_with(*pas), "lab", KV, sidecar, port, rule) is expected


@pytest.mark.parametrize(
    ("mode", "mtls", "expected"),
    [
        ("STRICT", True, True),
        ("STRICT", False, False),
        ("PERMISSIVE", True, True),
        ("PERMISSIVE", False, True),
        ("DISABLE", False, True),
        ("DISABLE", True, False),
    ],
)
def test_server_accepts(mode: str, mtls: bool, expected: bool) -> None:
    assert policy.accepts(mode, mtls) is expected


# ---- validation ----------------------------------------------------------------------------------------
def vs_spec(**rule) -> dict:
    return {
        "kind": "VirtualService",
        "metadata": {"name": "v"},
        "spec": {"hosts": ["kvstore"], "http": [{"route": ROUTE, **rule}]},
    }


def http_route(rule: dict) -> dict:
    return {
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [rule]},
    }


BACKEND = [{"name": "splitdim", "port": 80}]
VALID = [
    *(
        d
        for f in ("fault.yaml", "mtls.yaml", "routing.yaml", "gateway.yaml")
        for d in manifest(f)
        if d["kind"] in validation.KINDS_VALIDATED
    ),
    vs_spec(
        match=[
            {
                "uri": {"regex": "/api/v[0-9]+/.*"},
                "headers": {"end-user": {"exact": "jason"}, "x-canary": {}},
                "withoutHeaders": {"x-env": {"prefix": "prod"}},
                "queryParams": {"debug": {"regex": "1|true"}},
                "port": 8080,
            }
        ],
        timeout="1.5s",
        retries={"attempts": 3, "perTryTimeout": "250ms", "retryOn": "5xx,503,connect-failure"},
        fault={
            "delay": {"fixedDelay": "1m", "percent": 5},
            "abort": {"httpStatus": 503, "percentage": {"value": 0.5}},
        },
        headers={"request": {"set": {"x-a": "b"}}},
    ),
    {
        "kind": "VirtualService",
        "metadata": {"name": "split"},
        "spec": {"hosts": ["*.lab.svc.cluster.local"], "exportTo": [".", "other"], "http": [split(90, 10)]},
    },
    {
        "kind": "VirtualService",
        "metadata": {"name": "gw"},
        "spec": {"hosts": ["*"], "gateways": ["gw"], "http": [{"route": ROUTE}]},
    },
    SUBSETS_DR,
    TLS_DR,
    pa("kv", "lab", "STRICT", {"app": "kvstore"}, portLevelMtls={"8080": {"mode": "PERMISSIVE"}}),
    pa("empty", "lab"),
    http_route(
        {
            "matches": [
                {
                    "path": {"type": "RegularExpression", "value": "/api/.*"},
                    "headers": [{"name": "user", "type": "RegularExpression", "value": "te.t"}],
                    "queryParams": [{"name": "q", "value": "1"}],
                    "method": "GET",
                }
            ],
            "backendRefs": [
                {"name": "splitdim", "port": 80, "weight": 0},
                {"name": "splitdim-2", "port": 80, "weight": 5},
            ],
        }
    ),
]


@pytest.mark.parametrize("o", VALID, ids=[f"{o['kind']}-{o['metadata']['name']}" for o in VALID])
def test_valid_objects_have_no_causes(o: dict) -> None:
    assert validation.validate_istio(o["kind"], o) == []


def without_hosts() -> dict:
    o = vs_spec()
    del o["spec"]["hosts"]
    return o


INVALID = [
    # id, kind, object, field path, message fragment
    ("vs-no-hosts", "VirtualService", without_hosts(), "spec.hosts", "at least one host"),
    (
        "vs-empty-hosts",
        "VirtualService",
        {"spec": {"hosts": [], "http": []}},
        "spec.hosts",
        "at least one host",
    ),
    ("vs-bad-host", "VirtualService", {"spec": {"hosts": ["kv_store"]}}, "spec.hosts[0]", "invalid host"),
    ("vs-star-on-mesh", "VirtualService", {"spec": {"hosts": ["*"]}}, "spec.hosts[0]", "mesh gateway"),
    (
        "vs-uri-regex",
        "VirtualService",
        vs_spec(match=[{"uri": {"regex": "/api/(v1"}}]),
        "spec.http[0].match[0].uri.regex",
        "not a valid regex",
    ),
    (
        "vs-uri-lookahead",
        "VirtualService",
        vs_spec(match=[{"uri": {"regex": "(?!/admin).*"}}]),
        "spec.http[0].match[0].uri.regex",
        "lookaround",
    ),
    (
        "vs-header-regex",
        "VirtualService",
        vs_spec(match=[{"headers": {"user": {"regex": "[a-"}}}]),
        "spec.http[0].match[0].headers.user.regex",
        "not a valid regex",
    ),
    (
        "vs-query-regex",
        "VirtualService",
        vs_spec(match=[{"queryParams": {"q": {"regex": "*"}}}]),
        "spec.http[0].match[0].queryParams.q.regex",
        "not a valid regex",
    ),
    (
        "vs-without-header-regex",
        "VirtualService",
        vs_spec(match=[{"withoutHeaders": {"u": {"regex": "("}}}]),
        "spec.http[0].match[0].withoutHeaders.u.regex",
        "regex",
    ),
    (
        "vs-two-kinds",
        "VirtualService",
        vs_spec(match=[{"uri": {"exact": "/a", "prefix": "/a"}}]),
        "spec.http[0].match[0].uri",
        "only one of",
    ),
    (
        "vs-match-unknown",
        "VirtualService",
        vs_spec(match=[{"url": {"exact": "/a"}}]),
        "spec.http[0].match[0].url",
        'unknown field "spec.http[0].match[0].url"',
    ),
    (
        "vs-abort-percentage",
        "VirtualService",
        vs_spec(fault={"abort": {"httpStatus": 500, "percentage": {"value": 120}}}),
        "spec.http[0].fault.abort.percentage.value",
        "percentage 120 is not in range 0..100",
    ),
    (
        "vs-delay-percentage",
        "VirtualService",
        vs_spec(fault={"delay": {"fixedDelay": "1s", "percentage": {"value": -1}}}),
        "spec.http[0].fault.delay.percentage.value",
        "not in range 0..100",
    ),
    (
        "vs-delay-percent",
        "VirtualService",
        vs_spec(fault={"delay": {"fixedDelay": "1s", "percent": 101}}),
        "spec.http[0].fault.delay.percent",
        "not in range 0..100",
    ),
    (
        "vs-abort-no-status",
        "VirtualService",
        vs_spec(fault={"abort": {"percentage": {"value": 10}}}),
        "spec.http[0].fault.abort.httpStatus",
        "httpStatus",
    ),
    (
        "vs-abort-status-range",
        "VirtualService",
        vs_spec(fault={"abort": {"httpStatus": 700}}),
        "spec.http[0].fault.abort.httpStatus",
        "HTTP status 700 is not in range 200..599",
    ),
    (
        "vs-abort-status-low",
        "VirtualService",
        vs_spec(fault={"abort": {"httpStatus": 100}}),
        "spec.http[0].fault.abort.httpStatus",
        "not in range 200..599",
    ),
    ("vs-fault-empty", "VirtualService", vs_spec(fault={}), "spec.http[0].fault", "abort and/or a delay"),
    (
        "vs-delay-no-duration",
        "VirtualService",
        vs_spec(fault={"delay": {"percentage": {"value": 5}}}),
        "spec.http[0].fault.delay.fixedDelay",
        "fixedDelay",
    ),
    (
        "vs-delay-bad-duration",
        "VirtualService",
        vs_spec(fault={"delay": {"fixedDelay": "5 seconds"}}),
        "spec.http[0].fault.delay.fixedDelay",
        "invalid duration",
    ),
    (
        "vs-route-typo",
        "VirtualService",
        vs_spec(rooute=ROUTE),
        "spec.http[0].rooute",
        'unknown field "spec.http[0].rooute"',
    ),
    (
        "vs-destination-typo",
        "VirtualService",
        {"spec": {"hosts": ["kvstore"], "http": [{"route": [{"destinaton": {"host": "kvstore"}}]}]}},
        "spec.http[0].route[0].destinaton",
        'unknown field "spec.http[0].route[0].destinaton"',
    ),
    (
        "vs-destination-field-typo",
        "VirtualService",
        {
            "spec": {
                "hosts": ["kvstore"],
                "http": [{"route": [{"destination": {"host": "kvstore", "subet": "v1"}}]}],
            }
        },
        "spec.http[0].route[0].destination.subet",
        "unknown field",
    ),
    (
        "vs-destination-missing",
        "VirtualService",
        {"spec": {"hosts": ["kvstore"], "http": [{"route": [{"weight": 100}]}]}},
        "spec.http[0].route[0].destination",
        "destination is required",
    ),
    (
        "vs-destination-no-host",
        "VirtualService",
        {"spec": {"hosts": ["kvstore"], "http": [{"route": [{"destination": {"subset": "v1"}}]}]}},
        "spec.http[0].route[0].destination.host",
        "destination host is required",
    ),
    (
        "vs-weights-sum",
        "VirtualService",
        {"spec": {"hosts": ["kvstore"], "http": [split(60, 60)]}},
        "spec.http[0].route",
        "total destination weight 120 != 100",
    ),
    (
        "vs-weights-omitted",
        "VirtualService",
        {
            "spec": {
                "hosts": ["kvstore"],
                "http": [{"route": [{"destination": {"host": "a"}}, {"destination": {"host": "b"}}]}],
            }
        },
        "spec.http[0].route",
        "total destination weight 0 != 100",
    ),
    (
        "vs-weight-negative",
        "VirtualService",
        {"spec": {"hosts": ["kvstore"], "http": [split(110, -10)]}},
        "spec.http[0].route[1].weight",
        "must not be negative",
    ),
    ("vs-timeout", "VirtualService", vs_spec(timeout="10"), "spec.http[0].timeout", "invalid duration"),
    ("vs-timeout-tiny", "VirtualService", vs_spec(timeout="10us"), "spec.http[0].timeout", "at least 1ms"),
    (
        "vs-per-try-timeout",
        "VirtualService",
        vs_spec(retries={"attempts": 2, "perTryTimeout": "1x"}),
        "spec.http[0].retries.perTryTimeout",
        "invalid duration",
    ),
    (
        "vs-attempts",
        "VirtualService",
        vs_spec(retries={"attempts": -1}),
        "spec.http[0].retries.attempts",
        "attempts -1",
    ),
    (
        "vs-retry-on",
        "VirtualService",
        vs_spec(retries={"attempts": 2, "retryOn": "5xx,sometimes"}),
        "spec.http[0].retries.retryOn",
        '"sometimes" is not a valid retryOn policy',
    ),
    (
        "vs-no-action",
        "VirtualService",
        {"spec": {"hosts": ["kvstore"], "http": [{"timeout": "1s"}]}},
        "spec.http[0]",
        "must have a route",
    ),
    (
        "vs-route-and-redirect",
        "VirtualService",
        vs_spec(redirect={"uri": "/x"}),
        "spec.http[0]",
        "both route and redirect",
    ),
    (
        "vs-export-to",
        "VirtualService",
        {"spec": {"hosts": ["kvstore"], "exportTo": ["Not A Namespace"]}},
        "spec.exportTo[0]",
        "invalid exportTo",
    ),
    ("vs-port", "VirtualService", vs_spec(match=[{"port": 70000}]), "spec.http[0].match[0].port", "1..65535"),
    (
        "dr-no-host",
        "DestinationRule",
        {"spec": {"subsets": [{"name": "v1", "labels": {"v": "1"}}]}},
        "spec.host",
        "host is required",
    ),
    (
        "dr-subset-no-name",
        "DestinationRule",
        {"spec": {"host": "kvstore", "subsets": [{"labels": {"v": "1"}}]}},
        "spec.subsets[0].name",
        "subset name is required",
    ),
    (
        "dr-subset-bad-name",
        "DestinationRule",
        {"spec": {"host": "kvstore", "subsets": [{"name": "V_1", "labels": {"v": "1"}}]}},
        "spec.subsets[0].name",
        "is invalid",
    ),
    (
        "dr-subset-no-labels",
        "DestinationRule",
        {"spec": {"host": "kvstore", "subsets": [{"name": "v1"}]}},
        "spec.subsets[0].labels",
        "at least one identifying label",
    ),
    (
        "dr-duplicate-subset",
        "DestinationRule",
        {
            "spec": {
                "host": "kvstore",
                "subsets": [{"name": "v1", "labels": {"v": "1"}}, {"name": "v1", "labels": {"v": "2"}}],
            }
        },
        "spec.subsets[1].name",
        'duplicate subset name "v1"',
    ),
    (
        "dr-tls-mode",
        "DestinationRule",
        {"spec": {"host": "kvstore", "trafficPolicy": {"tls": {"mode": "ISTIO"}}}},
        "spec.trafficPolicy.tls.mode",
        'Unsupported value: "ISTIO"',
    ),
    (
        "pa-mode",
        "PeerAuthentication",
        {"spec": {"mtls": {"mode": "STRICTER"}}},
        "spec.mtls.mode",
        'Unsupported value: "STRICTER"',
    ),
    (
        "pa-mode-lowercase",
        "PeerAuthentication",
        {"spec": {"mtls": {"mode": "strict"}}},
        "spec.mtls.mode",
        '"UNSET", "DISABLE", "PERMISSIVE", "STRICT"',
    ),
    (
        "pa-port-without-selector",
        "PeerAuthentication",
        {"spec": {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}}},
        "spec.portLevelMtls",
        "requires a workload selector",
    ),
    (
        "pa-port-mode",
        "PeerAuthentication",
        {"spec": {"selector": {"matchLabels": {"app": "kv"}}, "portLevelMtls": {"8080": {"mode": "OFF"}}}},
        "spec.portLevelMtls[8080].mode",
        'Unsupported value: "OFF"',
    ),
    (
        "pa-port-range",
        "PeerAuthentication",
        {"spec": {"selector": {"matchLabels": {"app": "kv"}}, "portLevelMtls": {"0": {"mode": "STRICT"}}}},
        "spec.portLevelMtls[0]",
        "1..65535",
    ),
    (
        "route-path-regex",
        "HTTPRoute",
        http_route({"matches": [{"path": {"type": "RegularExpression", "value": "/api/(x"}}], "backendRefs": BACKEND}),
        "spec.rules[0].matches[0].path.value",
        "not a valid regex",
    ),
    (
        "route-header-regex",
        "HTTPRoute",
        http_route(
            {
                "matches": [{"headers": [{"name": "user", "type": "RegularExpression", "value": "(?=t)"}]}],
                "backendRefs": BACKEND,
            }
        ),
        "spec.rules[0].matches[0].headers[0].value",
        "lookaround",
    ),
    (
        "route-header-type",
        "HTTPRoute",
        http_route(
            {
                "matches": [{"headers": [{"name": "user", "type": "Prefix", "value": "t"}]}],
                "backendRefs": BACKEND,
            }
        ),
        "spec.rules[0].matches[0].headers[0].type",
        'Unsupported value: "Prefix"',
    ),
    (
        "route-path-type",
        "HTTPRoute",
        http_route({"matches": [{"path": {"type": "Prefix", "value": "/"}}], "backendRefs": BACKEND}),
        "spec.rules[0].matches[0].path.type",
        '"Exact", "PathPrefix", "RegularExpression"',
    ),
    (
        "route-path-relative",
        "HTTPRoute",
        http_route({"matches": [{"path": {"type": "PathPrefix", "value": "api"}}], "backendRefs": BACKEND}),
        "spec.rules[0].matches[0].path.value",
        'start with "/"',
    ),
    (
        "route-weight",
        "HTTPRoute",
        http_route({"backendRefs": [{"name": "splitdim", "port": 80, "weight": -1}]}),
        "spec.rules[0].backendRefs[0].weight",
        "greater than or equal to 0",
    ),
    (
        "route-weight-huge",
        "HTTPRoute",
        http_route({"backendRefs": [{"name": "splitdim", "port": 80, "weight": 1000001}]}),
        "spec.rules[0].backendRefs[0].weight",
        "less than or equal to 1000000",
    ),
    (
        "route-matches-shape",
        "HTTPRoute",
        http_route({"matches": {"path": {"value": "/"}}, "backendRefs": BACKEND}),
        "spec.rules[0].matches",
        "must be of type array",
    ),
    (
        "route-backends-shape",
        "HTTPRoute",
        http_route({"backendRefs": {"name": "splitdim", "port": 80}}),
        "spec.rules[0].backendRefs",
        "must be of type array",
    ),
    (
        "route-backend-port",
        "HTTPRoute",
        http_route({"backendRefs": [{"name": "splitdim"}]}),
        "spec.rules[0].backendRefs[0].port",
        "Must have port",
    ),
    (
        "route-backend-name",
        "HTTPRoute",
        http_route({"backendRefs": [{"port": 80}]}),
        "spec.rules[0].backendRefs[0].name",
        "Required value",
    ),
    (
        "route-method",
        "HTTPRoute",
        http_route({"matches": [{"method": "FETCH"}], "backendRefs": BACKEND}),
        "spec.rules[0].matches[0].method",
        'Unsupported value: "FETCH"',
    ),
]


@pytest.mark.parametrize(("kind", "o", "field", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_objects_name_the_field(kind: str, o: dict, field: str, fragment: str) -> None:
    causes = validation.validate_istio(kind, o)
    assert causes, f"{kind} should be refused"
    assert any(f == field and fragment in m for f, m in causes), causes


def test_webhook_message() -> None:
    causes = validation.validate_istio(
        "VirtualService", vs_spec(fault={"abort": {"httpStatus": 500, "percentage": {"value": 120}}})
    )
    assert validation.webhook_message(causes) == (
        'admission webhook "validation.istio.io" denied the request: configuration is invalid: '
        "spec.http[0].fault.abort.percentage.value: percentage 120 is not in range 0..100"
    )
    two = validation.webhook_message([("a", "x"), ("b", "y")])
    assert two.endswith("2 errors occurred:\n\t* a: x\n\t* b: y")


def test_kinds_validated() -> None:
    assert validation.KINDS_VALIDATED == {
        "VirtualService",
        "DestinationRule",
        "PeerAuthentication",
        "HTTPRoute",
    }
    assert validation.validate_istio("ConfigMap", {"data": 5}) == []
