"""CPU cost of one proxy hop on the HTTP/1.1 engine (sandbox/mesh/http1.py), against the same proxy on aiohttp.

Everything runs in one process on one event loop (uvloop unless `--loop asyncio`): a closed-loop load
generator (the engine's ClientPool with CONCURRENCY workers), an upstream server on the engine and, in
between, either nothing (the baseline), a minimal proxy on the engine, the same proxy on aiohttp (web
server + ClientSession, as the sidecars run today), or the engine proxy calling a TLS upstream over
mutual TLS with the mesh's certificates (the cost of a sidecar-to-sidecar link with both TLS ends).
The process's CPU time per request minus the baseline's is what one hop adds: user time (the Python side)
plus system time (mostly the kernel's loopback TCP, which the engine keeps at one read and one write per
message), both shown. The machine may be shared,
so each scenario runs in BATCHES short batches interleaved with the others' and reports its best batch
(least CPU per request): that is the closest to a quiet machine.
Targets: an engine hop adds <= 60 us of CPU per request; >= 5,000 req/s through one hop.
Run: .venv/bin/python benchmarks/http1_proxy.py [REQUESTS] [--batches N] [--loop asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import ssl
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._lab import percentile  # noqa: E402
from sandbox.mesh import http1  # noqa: E402
from sandbox.mesh.pki import MeshCA  # noqa: E402

LOCAL = "127.0.0.1"
CONCURRENCY = 32
WARMUP = 2000
BATCHES = 10
# What an app's request through its sidecar looks like: a few ordinary headers and a small JSON answer.
REQUEST_HEADERS = [
    ("Host", "kvstore.lab.svc.cluster.local:8081"),
    ("User-Agent", "splitdim/1.0"),
    ("Accept", "application/json"),
    ("Accept-Encoding", "gzip, deflate"),
    ("X-Request-Id", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ("Connection", "keep-alive"),
]
ANSWER = b'{"key": "alice", "value": "42", "version": 17, "updated": "2026-05-09T07:35:25Z", "ok": true}'


def listening_socket() -> socket.socket:
    sock = socket.create_server((LOCAL, 0), backlog=1024)
    sock.setblocking(False)
    return sock


async def upstream(request: http1.Request) -> http1.Response:
    return http1.Response(200, [("Content-Type", "application/json")], ANSWER)


def engine_proxy(pool: http1.ClientPool, port: int, tls: ssl.SSLContext | None) -> http1.Handler:
    async def handle(request: http1.Request) -> http1.Response:
        headers = http1.strip_hop_by_hop(request.headers)
        answer = await pool.request(LOCAL, port, request.method, request.target, headers, request.body, ssl=tls)
        return http1.Response(answer.status, http1.strip_hop_by_hop(answer.headers), answer.body)

    return handle


async def aiohttp_proxy(stack: AsyncExitStack, port: int) -> int:
    """The same proxy on aiohttp, configured as the sidecars configure it; returns its port."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=512, ttl_dns_cache=None),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )
    stack.push_async_callback(session.close)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in http1.HOP_BY_HOP}
        async with session.request(
            request.method, f"http://{LOCAL}:{port}{request.path_qs}", headers=headers, data=body or None
        ) as up:
            payload = await up.read()
            out = {k: v for k, v in up.headers.items() if k.lower() not in http1.HOP_BY_HOP | {"content-length"}}
            return web.Response(status=up.status, body=payload, headers=out)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    sock = listening_socket()
    await web.SockSite(runner, sock, backlog=1024).start()
    return sock.getsockname()[1]


async def engine_server(stack: AsyncExitStack, handler: http1.Handler, tls: ssl.SSLContext | None = None) -> int:
    server = await http1.serve(listening_socket(), handler=handler, ssl=tls)
    stack.callback(server.close)
    return server.sockets[0].getsockname()[1]


@dataclass
class Result:
    """The best batch of a scenario: the one that cost the least CPU per request."""

    name: str
    hops: int
    requests: int = 0
    wall: float = 0.0
    cpu: float = float("inf")
    user: float = 0.0  # the part of `cpu` spent in the process itself (Python), the rest in the kernel
    latencies: list[float] = field(default_factory=list)

    @property
    def cpu_per_request_us(self) -> float:
        return self.cpu / self.requests * 1e6

    @property
    def user_per_request_us(self) -> float:
        return self.user / self.requests * 1e6


async def batch(pool: http1.ClientPool, port: int, requests: int) -> tuple[float, float, float, list[float]]:
    """`requests` GETs from CONCURRENCY closed-loop workers; wall, CPU and user CPU seconds, latencies."""
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def worker() -> None:
        for i in remaining:
            response = await pool.request(LOCAL, port, "GET", f"/api/get?key=alice&n={i}", REQUEST_HEADERS)
            if response.status != 200 or response.body != ANSWER:
                raise RuntimeError(f"unexpected answer: {response.status} {response.body[:100]!r}")
            latencies.append(response.elapsed)

    wall, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall, after = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_SELF)
    user = after.ru_utime - before.ru_utime
    return wall, user + after.ru_stime - before.ru_stime, user, latencies


async def measure(requests: int, batches: int) -> list[Result]:
    identity = MeshCA().identity("bench", "default")
    server_tls, client_tls = identity.server_context(), identity.client_context()
    async with AsyncExitStack() as stack:

        async def engine_hop(tls: bool) -> int:
            up = await engine_server(stack, upstream, server_tls if tls else None)
            pool = http1.ClientPool()
            stack.callback(pool.close)
            return await engine_server(stack, engine_proxy(pool, up, client_tls if tls else None))

        scenarios = [
            (Result("no proxy (baseline)", 0), await engine_server(stack, upstream)),
            (Result("engine proxy", 1), await engine_hop(tls=False)),
            (Result("engine proxy, mTLS link", 1), await engine_hop(tls=True)),
            (Result("aiohttp proxy", 1), await aiohttp_proxy(stack, await engine_server(stack, upstream))),
        ]
        clients = [http1.ClientPool() for _ in scenarios]
        for pool in clients:
            stack.callback(pool.close)
        for (_, port), pool in zip(scenarios, clients, strict=True):
            await batch(pool, port, WARMUP)
        size = max(requests // batches, CONCURRENCY)
        for _ in range(batches):  # interleaved, so that all scenarios see the same neighbours
            for (result, port), pool in zip(scenarios, clients, strict=True):
                wall, cpu, user, latencies = await batch(pool, port, size)
                if cpu < result.cpu:
                    result.requests, result.wall, result.cpu, result.user = size, wall, cpu, user
                    result.latencies = latencies
    return [result for result, _ in scenarios]


def report(results: list[Result], loop_name: str, batches: int) -> None:
    base = results[0]
    print(
        f"{batches} batches of {base.requests} requests per scenario, {CONCURRENCY} concurrent, "
        f"one process on {loop_name}, {os.cpu_count()} CPUs; each scenario's best batch"
    )
    print(
        f"{'scenario':26} {'req/s':>8} {'CPU us/req':>11} {'(user)':>7} {'hop CPU us':>11} {'(user)':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7}"
    )
    for r in results:
        hop = (
            f"{r.cpu_per_request_us - base.cpu_per_request_us:11.1f} "
            f"{r.user_per_request_us - base.user_per_request_us:7.1f}"
            if r.hops
            else f"{'-':>11} {'-':>7}"
        )
        print(
            f"{r.name:26} {r.requests / r.wall:8.0f} {r.cpu_per_request_us:11.1f} {r.user_per_request_us:7.1f} "
            f"{hop} {percentile(r.latencies, 50) * 1e3:7.2f} {percentile(r.latencies, 99) * 1e3:7.2f}"
        )
    engine, aio = results[1], results[3]
    engine_hop = engine.cpu_per_request_us - base.cpu_per_request_us
    aio_hop = aio.cpu_per_request_us - base.cpu_per_request_us
    engine_user = engine.user_per_request_us - base.user_per_request_us
    aio_user = aio.user_per_request_us - base.user_per_request_us
    print(f"engine hop vs aiohttp hop: {aio_hop / engine_hop:.1f}x cheaper ({aio_user / engine_user:.1f}x in user CPU)")
    print(f"target <= 60 us per hop: {'met' if engine_hop <= 60 else 'NOT met'} ({engine_hop:.1f} us)")
    rate = engine.requests / engine.wall
    print(f"target >= 5000 req/s through one hop: {'met' if rate >= 5000 else 'NOT met'} ({rate:.0f} req/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requests", nargs="?", type=int, default=30_000)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--batches", type=int, default=BATCHES)
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        results = uvloop.run(measure(args.requests, args.batches))
    else:
        results = asyncio.run(measure(args.requests, args.batches))
    report(results, args.loop, args.batches)


if __name__ == "__main__":
    main()
