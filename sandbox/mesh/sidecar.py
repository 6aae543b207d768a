"""The sidecar proxy of an injected pod: inbound mTLS termination, outbound routing, Istio telemetry.

Inbound, it listens on the pod's address at each of the app's ports (the app itself listens on the
pod's private address) and, like Envoy, tells TLS from plaintext by the first byte of a connection:
mutual TLS from another sidecar is accepted under every mode but DISABLE, plaintext from outside the
mesh is refused at the connection under STRICT. Outbound, the app's `HTTP_PROXY` points at it; it
applies VirtualServices (match, route, subsets, fault injection, timeouts, retries) and speaks mTLS
to meshed destinations. Both sides record Istio's standard metrics, served on 15020 and 15090.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import socket
import time
from urllib.parse import urlsplit

from multidict import CIMultiDict

from sandbox import catalog, dns
from sandbox.mesh import http1, pki, policy, routing
from sandbox.mesh.config import ConfigView
from sandbox.mesh.telemetry import UNKNOWN_PEER, Peer, ProxyMetrics
from sandbox.mesh.upstream import (
    PEER_HEADER,
    SERVICE_HEADER,
    Endpoint,
    Exchange,
    call,
    decode_peer,
    encode_peer,
    endpoints,
    forward_headers,
    header_map,
    query_map,
    response,
    split_target,
    text,
)
from sandbox.mesh.workload import has_sidecar, peer_for_pod, peer_or_unknown
from sandbox.network import Network
from sandbox.store import Store

log = logging.getLogger(__name__)

SERVICES = catalog.get("", "services")
PODS = catalog.get("", "pods")
OUTBOUND_PORT = 15001
METRICS_PORTS = (15020, 15090)
PEEK_TIMEOUT = 30.0
DESTINATION_RULES = catalog.get("networking.istio.io", "destinationrules")


class MeshProxy:
    """What every Envoy in the mesh has: an identity, a metrics registry, a metrics endpoint."""

    def __init__(self, store: Store, network: Network, ca: pki.MeshCA, pod: dict, ip: str) -> None:
        self.store = store
        self.network = network
        self.pod = pod
        self.ip = ip
        self.namespace = pod["metadata"]["namespace"]
        self.peer: Peer = peer_for_pod(pod)
        self.peer_header = encode_peer(self.peer)  # what this proxy tells the next one about itself
        self.config = ConfigView.of(store)
        self.identity = ca.identity(self.namespace, pod.get("spec", {}).get("serviceAccountName") or "default")
        self.metrics = ProxyMetrics()
        # Few connections per upstream, kept open: a new mutual-TLS connection costs as much CPU as
        # several requests, so under a burst requests wait briefly for a connection rather than open one.
        self.pool = http1.ClientPool(max_per_host=16)
        self._servers: list[http1.Server] = []
        self._rr = itertools.count()

    async def _serve(self, handler, ports: tuple[int, ...]) -> None:
        server = http1.Server(handler)
        for port in ports:
            await server.listen(self.network.listen(self.ip, port))
        self._servers.append(server)

    async def start_metrics(self) -> None:
        async def stats(request: http1.Request) -> http1.Response:
            path = split_target(request.target)[0]
            if path in ("/stats/prometheus", "/metrics"):
                return http1.Response(
                    200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], self.metrics.exposition()
                )
            if path in ("/healthz/ready", "/ready"):
                return http1.Response(200)
            return text(404)

        await self._serve(stats, METRICS_PORTS)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        self.pool.close()

    # ---- the client side, shared with the gateway ------------------------------------------
    async def route_and_call(
        self,
        request: http1.Request,
        svc: dict,
        port: int,
        path_qs: str,
        body: bytes,
        started: float,
        mesh_routes: bool = True,
    ) -> http1.Response:
        """Route a request for Service `svc` as the calling proxy, call upstream, record source metrics.

        Sidecars apply the mesh's VirtualServices; a gateway has routed already (`mesh_routes=False`).
        """
        svc_ns, svc_name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        fqdn = f"{svc_name}.{svc_ns}.svc.cluster.local"
        config = self.config
        vs = (
            config.get(
                ("vs", self.namespace, fqdn, port),
                lambda: routing.find_virtual_service(self.store, self.namespace, fqdn, port),
            )
            if mesh_routes
            else None
        )
        path, query = split_target(path_qs)
        decision = routing.route(
            vs,
            config.get("destination-rules", lambda: self.store.list(DESTINATION_RULES)),
            fqdn,
            port,
            request.method,
            path,
            header_map(request.headers) if vs is not None else {},  # without a VirtualService, nothing matches
            query=query_map(query) if vs is not None and query else None,
            client_namespace=self.namespace,
            source_labels=self.pod["metadata"].get("labels") or {},
        )
        flags = "-"
        if decision.no_route:
            return self._done(svc, None, 404, b"", "NR", started, len(body))
        if decision.direct_response:
            status, text = decision.direct_response
            return self._done(svc, None, status, text.encode(), "-", started, len(body))
        if decision.redirect:
            status, location = decision.redirect
            self._done(svc, None, status, b"", "-", started, len(body))
            return http1.Response(status, [("Location", location)])
        if decision.delay and routing.fires(decision.delay[1]):
            await asyncio.sleep(decision.delay[0])
            flags = "DI"
        if decision.abort and routing.fires(decision.abort[1]):
            return self._done(svc, None, decision.abort[0], b"fault filter abort", "FI", started, len(body))
        if decision.missing_subset:
            return self._done(svc, None, 503, b"no healthy upstream", "NC", started, len(body))
        target = svc
        if decision.destination_host and decision.destination_host != fqdn:
            parsed = dns.split_service_host(decision.destination_host, svc_ns)
            target = self.store.get(SERVICES, parsed[2], parsed[1]) if parsed else None
            if target is None:
                return self._done(svc, None, 503, b"no healthy upstream", "UH", started, len(body))
        tport = decision.port or port
        eps = self._endpoints(target, tport, decision.subset_labels)
        if not eps:
            return self._done(target, None, 503, b"no healthy upstream", "UH", started, len(body))
        if decision.rewrite_path is not None:
            path_qs = decision.rewrite_path
        headers = CIMultiDict(forward_headers(request))
        host = request.get("host")
        if host:
            headers["Host"] = host
        decision.request_headers.apply(headers)
        if decision.rewrite_authority:
            headers["Host"] = decision.rewrite_authority
        headers[SERVICE_HEADER] = f"{target['metadata']['name']}.{target['metadata']['namespace']}.svc.cluster.local"
        attempts, per_try, retry_on = decision.retries or routing.DEFAULT_RETRIES
        ex: Exchange | None = None
        ep: Endpoint | None = None
        for attempt in range(attempts + 1):
            ep = eps[next(self._rr) % len(eps)]
            tls = None
            if self._uses_mtls(ep):
                tls = self.identity.client_context()
                headers[PEER_HEADER] = self.peer_header
            else:
                headers.pop(PEER_HEADER, None)
            ex = await call(
                self.pool,
                self.network,
                request.method,
                ep,
                path_qs,
                list(headers.items()),
                body,
                tls,
                per_try or decision.timeout,
            )
            retriable = _retry_on(retry_on, ex)
            if not retriable or attempt == attempts:
                if retriable and attempt > 0 and ex.flags != "-":
                    ex.flags = "URX"
                break
        assert ex is not None and ep is not None
        if ex.flags == "-" and flags != "-":
            ex.flags = flags
        if decision.response_headers:
            resp_headers = CIMultiDict(ex.headers)
            decision.response_headers.apply(resp_headers)
            ex.headers = list(resp_headers.items())
        return self._done(target, ep.pod, ex.status, ex.body, ex.flags, started, len(body), ex)

    def _endpoints(self, svc: dict, port: int, subset_labels: dict | None) -> list[Endpoint]:
        meta = svc["metadata"]
        subset = tuple(sorted(subset_labels.items())) if subset_labels else None
        return self.config.get(
            ("endpoints", meta["namespace"], meta["name"], port, subset),
            lambda: endpoints(self.store, meta["namespace"], svc, port, subset_labels or None),
        )

    def _uses_mtls(self, ep: Endpoint) -> bool:
        """Auto mTLS: whether this proxy speaks mutual TLS to endpoint `ep` (its pod's sidecar and policy)."""
        pod = ep.pod
        if pod is None:
            return False
        meta = pod["metadata"]
        return self.config.get(
            ("client-mtls", meta["namespace"], meta["name"], ep.port),
            lambda: (
                has_sidecar(pod)
                and policy.client_uses_mtls(self.store, meta["namespace"], meta.get("labels") or {}, True, ep.port)
            ),
        )

    def _peer_of(self, pod: dict | None) -> Peer:
        if pod is None:
            return UNKNOWN_PEER
        meta = pod["metadata"]
        return self.config.get(("peer", meta["namespace"], meta["name"]), lambda: peer_or_unknown(pod))

    def _done(
        self,
        svc: dict,
        dest_pod: dict | None,
        status: int,
        body: bytes,
        flags: str,
        started: float,
        request_bytes: int,
        ex: Exchange | None = None,
    ) -> http1.Response:
        meta = svc["metadata"]
        self.metrics.record(
            reporter="source",
            source=self.peer,
            destination=self._peer_of(dest_pod),
            destination_service=f"{meta['name']}.{meta['namespace']}.svc.cluster.local",
            destination_service_name=meta["name"],
            response_code=status,
            response_flags=flags,
            security_policy="unknown",
            duration_ms=(time.perf_counter() - started) * 1000,
            request_bytes=request_bytes,
            response_bytes=len(body),
        )
        if ex is not None:
            return response(ex)
        return http1.Response(status, [("Content-Type", "text/plain")], body)


def _retry_on(conditions: frozenset[str] | set[str], ex: Exchange) -> bool:
    """Envoy's retry conditions, as far as an HTTP/1.1 mesh can meet them."""
    if ex.flags == "UF":
        return bool(conditions & {"connect-failure", "reset", "refused-stream", "5xx", "gateway-error"})
    if ex.status >= 500 and "5xx" in conditions:
        return True
    if ex.status in (502, 503, 504) and "gateway-error" in conditions:
        return True
    if ex.status == 503 and conditions & {"retriable-status-codes", "unavailable"}:
        return True
    return str(ex.status) in conditions


class Sidecar(MeshProxy):
    def __init__(self, store: Store, network: Network, ca: pki.MeshCA, pod: dict, ip: str, inner_ip: str) -> None:
        super().__init__(store, network, ca, pod, ip)
        self.inner_ip = inner_ip
        self._inbound: list[tuple[socket.socket, asyncio.Task]] = []
        self._conns: set[asyncio.Task] = set()

    async def start(self) -> None:
        await self._serve(self.outbound, (OUTBOUND_PORT,))
        await self.start_metrics()

    async def stop(self) -> None:
        # The accept loops must have left the loop (uvloop drops its watcher of the fd) before their sockets
        # close: a closed descriptor's number is soon reused, and a stale watcher on it aborts the process.
        tasks = [task for _, task in self._inbound] + list(self._conns)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sock, _ in self._inbound:
            sock.close()
        await super().stop()

    @property
    def outbound_address(self) -> tuple[str, int]:
        return self.network.real(self.ip, OUTBOUND_PORT)

    # ---- inbound -----------------------------------------------------------------------------
    async def add_inbound(self, port: int) -> None:
        sock = self.network.listen(self.ip, port)
        server = http1.Server(lambda request: self.inbound(request, port))
        self._servers.append(server)
        task = asyncio.get_running_loop().create_task(self._accept(sock, server, port))
        self._inbound.append((sock, task))

    async def _accept(self, sock: socket.socket, server: http1.Server, port: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(sock)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = loop.create_task(self._connection(conn, server, port))
            self._conns.add(t)
            t.add_done_callback(self._conns.discard)

    async def _connection(self, conn: socket.socket, server: http1.Server, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            first = await _peek(loop, conn)
        except BaseException:  # cancelled by stop(): nobody owns the socket yet, so the client must not hang
            conn.close()
            raise
        if not first:
            conn.close()
            return
        tls = first[:1] == b"\x16"
        mode = self.config.get(
            ("mtls-mode", self.namespace, self.pod["metadata"]["name"], port),
            lambda: policy.mtls_mode(self.store, self.namespace, self.pod["metadata"].get("labels") or {}, port),
        )
        if (tls and mode == "DISABLE") or (not tls and mode == "STRICT"):
            # Envoy's listener has no filter chain for this: the connection is reset.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()
            return
        try:
            await server.accept_connection(conn, ssl=self.identity.server_context() if tls else None)
        except (TimeoutError, OSError) as e:  # a failed handshake (no or foreign client cert)
            log.debug("inbound handshake on %s:%s failed: %s", self.ip, port, e)

    async def inbound(self, request: http1.Request, port: int) -> http1.Response:
        started = time.perf_counter()
        if request.ssl_object is not None:
            principal = pki.peer_spiffe_id(request.ssl_object) or "unknown"
            source = _decode_peer(request.get(PEER_HEADER), principal) or UNKNOWN_PEER
            security = "mutual_tls"
        else:
            source, security = UNKNOWN_PEER, "none"
        service_fqdn = request.get(SERVICE_HEADER) or self.config.get(
            ("service-for", self.namespace, self.pod["metadata"]["name"], port), lambda: self._service_for(port)
        )
        headers = forward_headers(request)
        host = request.get("host")
        if host:
            headers.append(("Host", host))
        ex = await call(
            self.pool,
            self.network,
            request.method,
            Endpoint(self.inner_ip, port, None),
            request.target,
            headers,
            request.body,
            None,
            None,
        )
        self.metrics.record(
            reporter="destination",
            source=source,
            destination=self.peer,
            destination_service=service_fqdn,
            destination_service_name=service_fqdn.partition(".")[0],
            response_code=ex.status,
            response_flags=ex.flags,
            security_policy=security,
            duration_ms=(time.perf_counter() - started) * 1000,
            request_bytes=len(request.body),
            response_bytes=len(ex.body),
        )
        return response(ex)

    def _service_for(self, port: int) -> str:
        """The Service that sends traffic to this pod on `port` (for callers that did not say)."""
        labels = self.pod["metadata"].get("labels") or {}
        for svc in self.store.list(SERVICES, self.namespace):
            sel = svc.get("spec", {}).get("selector")
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                for p in svc["spec"].get("ports") or []:
                    if p.get("targetPort", p.get("port")) == port or p.get("port") == port:
                        return f"{svc['metadata']['name']}.{self.namespace}.svc.cluster.local"
        return f"{self.peer.workload}.{self.namespace}.svc.cluster.local"

    # ---- outbound ----------------------------------------------------------------------------
    def _service_named(self, host: str) -> dict | None:
        """The Service a host name in a request means, seen from this pod's namespace (None: not a Service)."""
        parsed = None if dns.is_ip(host) else dns.split_service_host(host, self.namespace)
        if parsed and parsed[0] is None:
            return self.store.get(SERVICES, parsed[2], parsed[1])
        return None

    async def outbound(self, request: http1.Request) -> http1.Response:
        started = time.perf_counter()
        url = urlsplit(request.target)
        if not url.scheme or not url.hostname:
            return text(400, "this is the sidecar's outbound listener: send absolute URLs\n")
        host, port = url.hostname, url.port or 80
        path_qs = (url.path or "/") + (f"?{url.query}" if url.query else "")
        svc = self.config.get(("service-named", self.namespace, host), lambda: self._service_named(host))
        if svc is not None:
            return await self.route_and_call(request, svc, port, path_qs, request.body, started)
        # Not a Service: pass through to the address as Istio's PassthroughCluster does.
        addrs = dns.resolve(self.store, host, port, self.namespace)
        if addrs is None:
            return text(502, f"could not resolve host: {host}\n")
        if not addrs:
            return text(503, "no healthy upstream")
        ip, p = addrs[0]
        ex = await call(
            self.pool,
            self.network,
            request.method,
            Endpoint(ip, p, None),
            path_qs,
            forward_headers(request),
            request.body,
            None,
            None,
        )
        return response(ex)


@functools.lru_cache(maxsize=1024)
def _decode_peer(value: str | None, principal: str) -> Peer | None:
    # A sidecar hears from the same few peers again and again: decode each announcement once.
    return decode_peer(value, principal)


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """The first byte a client sends, left in the socket for whoever reads the connection next."""
    conn.setblocking(False)
    fut = loop.create_future()
    fd = conn.fileno()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await asyncio.wait_for(fut, PEEK_TIMEOUT)
    except TimeoutError:
        return b""
    finally:
        loop.remove_reader(fd)
    try:
        return conn.recv(1, socket.MSG_PEEK)
    except OSError:
        return b""
