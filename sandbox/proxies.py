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
from sandbox.network import Network
from sandbox.store import Store

log = logging.getLogger(__name__)

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # already closed by the peer
            pass


class TcpForwarder:
    """Accepts on one socket and forwards each connection to one of the backends `pick` returns."""

    def __init__(self, network: Network, pick: Callable[[], list[tuple[str, int]]]) -> None:
        self.network = network
        self.pick = pick
        self.server: asyncio.base_events.Server | None = None
        self._rr = itertools.count()
        self._conns: set[asyncio.Task] = set()

    async def start(self, sock: socket.socket) -> None:
        self.server = await asyncio.start_server(self._handle, sock=sock)

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for t in list(self._conns):
            t.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._conns.add(task)
        try:
            backends = self.pick()
            if not backends:  # no ready endpoints: refuse, as kube-proxy's REJECT rule does
                writer.close()
                return
            ip, port = backends[next(self._rr) % len(backends)]
            try:
                up_r, up_w = await asyncio.open_connection(*self.network.real(ip, port))
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
        finally:
            self._conns.discard(task)


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
            return web.Response(status=503, text="upstream connect error or disconnect/reset before headers")
        except TimeoutError:
            return web.Response(status=504, text="upstream request timeout")
