"""The ingress gateway workload (`<gateway>-istio` pods): serves a Gateway's listeners, routes by HTTPRoutes.

Route matching follows the Gateway API: rules are tried in order, a rule matches when any of its
`matches` matches (path Exact / PathPrefix / RegularExpression, headers, method, query params), a
rule without `matches` matches everything, and `backendRefs` are chosen by weight. No matching
route answers 404, as Istio does.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import aiohttp
from aiohttp import web

from sandbox import catalog, dns
from sandbox.network import Network
from sandbox.proxies import HOP_BY_HOP
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


def route_request(
    store: Store, ns: str, gateway: str, listener: str | None, method: str, path: str, headers, query
) -> dict | None | bool:
    """The backendRef for a request; None when no rule matches; False when a rule matched but has no backend."""
    routes = sorted(store.list(ROUTES, ns), key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))
    for route in routes:
        if not any(
            ref.get("name") == gateway and ref.get("namespace", ns) == ns and ref.get("sectionName") in (None, listener)
            for ref in route.get("spec", {}).get("parentRefs") or []
        ):
            continue
        for rule in route.get("spec", {}).get("rules") or []:
            matches = rule.get("matches") or [{}]
            if any(request_matches(m, method, path, headers, query) for m in matches):
                return pick_backend(rule.get("backendRefs") or []) or False
    return None


class GatewayServer:
    """Listens on the gateway pod's address for each listener port of its Gateway."""

    def __init__(
        self, store: Store, network: Network, session: aiohttp.ClientSession, ns: str, gateway: str, ip: str
    ) -> None:
        self.store = store
        self.network = network
        self.session = session
        self.ns = ns
        self.gateway = gateway
        self.ip = ip
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        self.ports: dict[int, str | None] = {}

    async def start(self) -> web.AppRunner:
        await self.runner.setup()
        gw = self.store.get(GW, self.ns, self.gateway) or {}
        for lst in gw.get("spec", {}).get("listeners") or []:
            self.ports.setdefault(lst.get("port"), lst.get("name"))
        for port in [STATUS_PORT, *self.ports]:
            sock = self.network.listen(self.ip, port)
            await web.SockSite(self.runner, sock).start()
        return self.runner

    async def handle(self, request: web.Request) -> web.StreamResponse:
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        port = self._listen_port(sock)
        if port == STATUS_PORT:
            if request.path == "/healthz/ready":
                return web.Response(text="")
            return web.Response(status=404)
        backend = route_request(
            self.store,
            self.ns,
            self.gateway,
            self.ports.get(port),
            request.method,
            request.path,
            request.headers,
            request.query,
        )
        if backend is None:
            return web.Response(status=404)
        if backend is False:
            return web.Response(status=500, text="no backend")
        svc_ns = backend.get("namespace", self.ns)
        svc = self.store.get(SERVICES, svc_ns, backend.get("name", ""))
        if svc is None:
            return web.Response(status=500)
        addrs = dns.endpoint_addresses(self.store, svc_ns, svc, backend.get("port") or svc["spec"]["ports"][0]["port"])
        if not addrs:
            return web.Response(status=503, text="no healthy upstream")
        ip, tport = random.choice(addrs)
        real_ip, real_port = self.network.real(ip, tport)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = request.host
        body = await request.read()
        target = request.url.with_scheme("http").with_host(real_ip).with_port(real_port)
        try:
            async with self.session.request(
                request.method, target, headers=headers, data=body or None, allow_redirects=False
            ) as up:
                payload = await up.read()
                out = {k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP}
                return web.Response(status=up.status, body=payload, headers=out)
        except (aiohttp.ClientConnectionError, OSError):
            return web.Response(status=503, text="upstream connect error or disconnect/reset before headers")
        except TimeoutError:
            return web.Response(status=504, text="upstream request timeout")

    def _listen_port(self, sockname) -> int | None:
        if not sockname:
            return None
        real_port = sockname[1]
        for port in [STATUS_PORT, *self.ports]:
            if self.network.real(self.ip, port)[1] == real_port:
                return port
        return None
