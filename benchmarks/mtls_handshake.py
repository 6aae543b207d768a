"""Cost of the sandbox mesh's mutual TLS: issuing identities, building contexts, and handshakes over loopback.

Every sidecar-to-sidecar connection pays one handshake, and every new pod one identity, so these bound how
fast the sandbox can open mesh connections and start injected pods.
Run: .venv/bin/python benchmarks/mtls_handshake.py [HANDSHAKES]
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._lab import percentile  # noqa: E402
from sandbox.mesh.pki import MeshCA, peer_spiffe_id  # noqa: E402

IDENTITIES = 200
CONCURRENCY = 16
CACHED_LOOKUPS = 10_000


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def handshake(port: int, ctx: ssl.SSLContext) -> float:
    """One full mutual-TLS handshake (new connection, no session resumption); its duration in seconds."""
    t0 = time.perf_counter()
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    elapsed = time.perf_counter() - t0
    assert peer_spiffe_id(writer.get_extra_info("ssl_object")) == "spiffe://cluster.local/ns/bench/sa/server"
    writer.close()
    try:
        await writer.wait_closed()
    except (ssl.SSLError, ConnectionError):
        pass
    return elapsed


async def measure_handshakes(ca: MeshCA, count: int) -> None:
    server_ctx = ca.identity("bench", "server").server_context()
    client_ctx = ca.identity("bench", "client").client_context()
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await handshake(port, client_ctx)  # warm-up
        t0 = time.perf_counter()
        serial = [await handshake(port, client_ctx) for _ in range(count)]
        serial_s = time.perf_counter() - t0

        pending = iter(range(count))
        concurrent: list[float] = []

        async def worker() -> None:
            for _ in pending:
                concurrent.append(await handshake(port, client_ctx))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        concurrent_s = time.perf_counter() - t0
    print(f"handshakes (client and server in one event loop, {count} each):")
    print(
        f"  one at a time: {count / serial_s:.0f}/s, p50 {percentile(serial, 50) * 1000:.2f} ms, "
        f"p99 {percentile(serial, 99) * 1000:.2f} ms"
    )
    print(
        f"  {CONCURRENCY} concurrent:  {count / concurrent_s:.0f}/s, "
        f"p50 {percentile(concurrent, 50) * 1000:.2f} ms, p99 {percentile(concurrent, 99) * 1000:.2f} ms"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    t0 = time.perf_counter()
    ca = MeshCA()
    print(f"root CA created in {(time.perf_counter() - t0) * 1000:.2f} ms")

    issue, contexts = [], []
    for i in range(IDENTITIES):
        t0 = time.perf_counter()
        identity = ca.identity("bench", f"sa-{i}")
        t1 = time.perf_counter()
        identity.server_context()
        identity.client_context()
        t2 = time.perf_counter()
        issue.append(t1 - t0)
        contexts.append(t2 - t1)
    t0 = time.perf_counter()
    for _ in range(CACHED_LOOKUPS):
        ca.identity("bench", "sa-0")
    cached = (time.perf_counter() - t0) / CACHED_LOOKUPS
    print(f"identities ({IDENTITIES}):")
    print(
        f"  issue key + certificate: p50 {percentile(issue, 50) * 1000:.2f} ms, p99 {percentile(issue, 99) * 1000:.2f} ms"
    )
    print(
        f"  build server + client contexts: p50 {percentile(contexts, 50) * 1000:.2f} ms, "
        f"p99 {percentile(contexts, 99) * 1000:.2f} ms"
    )
    print(f"  cached lookup (mean of {CACHED_LOOKUPS}): {cached * 1e6:.1f} us")
    asyncio.run(measure_handshakes(ca, count))


if __name__ == "__main__":
    main()
