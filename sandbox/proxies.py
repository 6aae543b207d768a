"""Traffic plumbing: kube-proxy style TCP forwarding for Services, and the per-pod egress proxy.

Apps in the sandbox send their outbound HTTP through their pod's egress proxy (`HTTP_PROXY`), which
resolves cluster names (`kvstore.lab:8081`) to ready pod addresses, just as cluster DNS plus
kube-proxy would. Services' ClusterIPs, LoadBalancer addresses and node ports are TCP forwarders.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Callable

import aiohttp
from aiohttp import web

from sandbox import dns
from sandbox.mesh import http1
from sandbox.network import Network
from sandbox.store import Store

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 §7.6.1), plus the framing and Host that the next hop sets itself.
HOP_BY_HOP = http1.HOP_BY_HOP | {"host", "content-length", "trailers"}


class _Half(asyncio.Protocol):
    """One side of a forwarded TCP connection; bytes go straight to the other side's transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=256 * 1024)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        if self.peer is not None and self.peer.transport is not None and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    # Flow control: when our peer cannot keep up, stop reading from our socket.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class TcpForwarder:
    """Accepts on one socket and forwards each connection to one of the backends `pick` returns."""

    def __init__(self, network: Network, pick: Callable[[], list[tuple[str, int]]]) -> None:
        self.network = network
        self.pick = pick
        self.server: asyncio.base_events.Server | None = None
        self._rr = itertools.count()
        self._tasks: set[asyncio.Task] = set()

    async def start(self, sock: socket.socket) -> None:
        self.server = await asyncio.get_running_loop().create_server(self._accepted, sock=sock)

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for t in list(self._tasks):
            t.cancel()

    def _accepted(self) -> _Half:
        client = _Half()
        task = asyncio.get_running_loop().create_task(self._connect(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return client

    async def _connect(self, client: _Half) -> None:
        await asyncio.sleep(0)  # let the transport attach to the protocol first
        backends = self.pick()
        if not backends or client.transport is None:
            if client.transport is not None:  # no ready endpoints: refuse, as kube-proxy's REJECT rule does
                client.transport.close()
            return
        ip, port = backends[next(self._rr) % len(backends)]
        upstream = _Half()
        try:
            await asyncio.get_running_loop().create_connection(lambda: upstream, *self.network.real(ip, port))
        except OSError:
            client.transport.close()
            return
        upstream.peer, client.peer = client, upstream
        for chunk in client.pending:
            upstream.transport.write(chunk)
        client.pending.clear()
        if client.transport.is_closing():
            upstream.transport.close()


class EgressProxy:
    """An HTTP forward proxy for one pod: resolves cluster names from the pod's namespace."""

    def __init__(self, store: Store, network: Network, namespace: str, session: aiohttp.ClientSession) -> None:
        self.store = store
        self.network = network
        self.namespace = namespace
        self.session = session
        self._rr = itertools.count()
        app = web.Application(handler_args={"max_field_size": 16384})
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)

    async def start(self, sock: socket.socket) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        url = request.url
        if not url.is_absolute() or url.host is None:
            return web.Response(status=400, text="this is a forward proxy: send absolute URLs\n")
        port = url.port or 80
        addrs = dns.resolve(self.store, url.host, port, self.namespace)
        if addrs is None:
            return web.Response(status=502, text=f"could not resolve host: {url.host}\n")
        if not addrs:
            return web.Response(status=503, text="no healthy upstream")
        ip, tport = addrs[next(self._rr) % len(addrs)]
        real_ip, real_port = self.network.real(ip, tport)
        target = url.with_host(real_ip).with_port(real_port)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = url.raw_authority
        body = await request.read()
        try:
            async with self.session.request(
                request.method, target, headers=headers, data=body or None, allow_redirects=False
            ) as up:
                payload = await up.read()
                out_headers = {k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP}
                return web.Response(status=up.status, body=payload, headers=out_headers)
        except (aiohttp.ClientConnectionError, OSError):
            # Without a mesh there is no proxy to answer: the caller sees what a direct connection would give,
            # a refused or reset connection (curl exit 7/52/56), never a made-up HTTP response.
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable() from None
        except TimeoutError:
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPGatewayTimeout() from None
