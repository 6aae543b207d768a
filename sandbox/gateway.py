"""The ingress gateway workload (`<gateway>-istio` pods): serves a Gateway's listeners, routes by HTTPRoutes.

Route matching follows the Gateway API: rules are tried in order, a rule matches when any of its
`matches` matches (path Exact / PathPrefix / RegularExpression, headers, method, query params), a
rule without `matches` matches everything, and `backendRefs` are chosen by weight. No matching
route answers 404, as Istio does.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

from sandbox import catalog
from sandbox.mesh import http1
from sandbox.mesh.pki import MeshCA
from sandbox.mesh.sidecar import MeshProxy
from sandbox.mesh.upstream import header_map, query_map, split_target, text
from sandbox.network import Network
from sandbox.store import Store

GW = catalog.get("gateway.networking.k8s.io", "gateways")
ROUTES = catalog.get("gateway.networking.k8s.io", "httproutes")
SERVICES = catalog.get("", "services")
STATUS_PORT = 15021


def path_matches(match: dict | None, path: str) -> bool:
    match = match or {"type": "PathPrefix", "value": "/"}
    kind = match.get("type", "PathPrefix")
    value = match.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "RegularExpression":
        try:
            return re.fullmatch(value, path) is not None
        except re.error:
            return False
    if value in ("", "/"):
        return True
    value = value.rstrip("/")
    return path == value or path.startswith(value + "/")


def _value_matches(kind: str, expected: str, actual: str | None) -> bool:
    if actual is None:
        return False
    if kind == "RegularExpression":
        try:
            return re.fullmatch(expected, actual) is not None
        except re.error:
            return False
    return actual == expected


def request_matches(match: dict, method: str, path: str, headers, query) -> bool:
    if not path_matches(match.get("path"), path):
        return False
    if match.get("method") and match["method"].upper() != method.upper():
        return False
    for h in match.get("headers") or []:
        if not _value_matches(h.get("type", "Exact"), h.get("value", ""), headers.get(h.get("name", ""))):
            return False
    for q in match.get("queryParams") or []:
        if not _value_matches(q.get("type", "Exact"), q.get("value", ""), query.get(q.get("name", ""))):
            return False
    return True


def pick_backend(refs: list[dict], rnd: Callable[[], float] = random.random) -> dict | None:
    weighted = [(r, r.get("weight", 1)) for r in refs if r.get("weight", 1) > 0]
    total = sum(w for _, w in weighted)
    if total <= 0:
        return None
    x = rnd() * total
    for ref, w in weighted:
        x -= w
        if x < 0:
            return ref
    return weighted[-1][0]


def host_matches(hostnames: list[str] | None, host: str) -> bool:
    """Gateway API hostname matching: none listed matches all; `*.example.com` matches one or more labels."""
    if not hostnames:
        return True
    host = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host.lower()
    for name in hostnames:
        name = name.lower()
        if name == host or (name.startswith("*.") and host.endswith(name[1:]) and host != name[2:]):
            return True
    return False


def _precedence(match: dict) -> tuple:
    """Gateway API rule precedence: exact path, then the longest prefix, then method, then more header
    matches, then more query matches (lower sorts first)."""
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind = path.get("type", "PathPrefix")
    rank = {"Exact": 0, "PathPrefix": 1, "RegularExpression": 2}.get(kind, 3)
    return (
        rank,
        -len(path.get("value", "/")),
        0 if match.get("method") else 1,
        -len(match.get("headers") or []),
        -len(match.get("queryParams") or []),
    )


def route_candidates(store: Store, ns: str, gateway: str, listener: str | None, host: str) -> list[tuple[dict, dict]]:
    """(match, rule) of every HTTPRoute rule attached to the listener for `host`, in precedence order."""
    candidates = []
    for route in store.list(ROUTES, ns):
        spec = route.get("spec", {})
        if not any(
            ref.get("name") == gateway and ref.get("namespace", ns) == ns and ref.get("sectionName") in (None, listener)
            for ref in spec.get("parentRefs") or []
        ):
            continue
        if not host_matches(spec.get("hostnames"), host):
            continue
        age = (route["metadata"]["creationTimestamp"], route["metadata"]["name"])
        for i, rule in enumerate(spec.get("rules") or []):
            for match in rule.get("matches") or [{}]:
                candidates.append((_precedence(match), age, i, match, rule))
    candidates.sort(key=lambda c: c[:3])
    return [(match, rule) for *_, match, rule in candidates]


def route_request(
    store: Store,
    ns: str,
    gateway: str,
    listener: str | None,
    method: str,
    path: str,
    headers,
    query,
    host: str = "",
    candidates: list[tuple[dict, dict]] | None = None,
) -> dict | None | bool:
    """The backendRef for a request; None when no rule matches; False when a rule matched but has no backend."""
    if candidates is None:
        candidates = route_candidates(store, ns, gateway, listener, host)
    for match, rule in candidates:
        if request_matches(match, method, path, headers, query):
            return pick_backend(rule.get("backendRefs") or []) or False
    return None


class GatewayServer(MeshProxy):
    """The `<gateway>-istio` proxy: listens on its pod's address for each listener port of its Gateway."""

    def __init__(self, store: Store, network: Network, ca: MeshCA, pod: dict, ip: str, gateway: str) -> None:
        super().__init__(store, network, ca, pod, ip)
        self.gateway = gateway
        self.ports: dict[int, str | None] = {}

    async def start(self) -> None:
        gw = self.store.get(GW, self.namespace, self.gateway) or {}
        for lst in gw.get("spec", {}).get("listeners") or []:
            self.ports.setdefault(lst.get("port"), lst.get("name"))
        await self._serve(self.status, (STATUS_PORT,))
        for port, listener in self.ports.items():
            await self._serve(
                lambda request, port=port, listener=listener: self.handle(request, port, listener), (port,)
            )
        await self.start_metrics()

    def _candidates(self, listener: str | None, host: str) -> tuple[list[tuple[dict, dict]], bool, bool]:
        """The listener's route candidates for `host`, and whether any matches on headers, on the query."""
        candidates = route_candidates(self.store, self.namespace, self.gateway, listener, host)
        return (
            candidates,
            any(match.get("headers") for match, _ in candidates),
            any(match.get("queryParams") for match, _ in candidates),
        )

    async def status(self, request: http1.Request) -> http1.Response:
        return http1.Response(200) if split_target(request.target)[0] == "/healthz/ready" else text(404)

    async def handle(self, request: http1.Request, port: int, listener: str | None) -> http1.Response:
        started = time.perf_counter()
        path, query = split_target(request.target)
        host = request.get("host") or ""
        candidates, by_headers, by_query = self.config.get(
            ("gateway-routes", self.namespace, self.gateway, listener, host), lambda: self._candidates(listener, host)
        )
        backend = route_request(
            self.store,
            self.namespace,
            self.gateway,
            listener,
            request.method,
            path,
            header_map(request.headers) if by_headers else {},
            query_map(query) if by_query else {},
            host,
            candidates,
        )
        if backend is None:
            return text(404)
        if backend is False:
            return text(500, "no backend")
        svc_ns = backend.get("namespace", self.namespace)
        svc = self.store.get(SERVICES, svc_ns, backend.get("name", ""))
        if svc is None:
            return text(500, "backend service not found")
        svc_port = backend.get("port") or svc["spec"]["ports"][0]["port"]
        return await self.route_and_call(
            request, svc, svc_port, request.target, request.body, started, mesh_routes=False
        )
