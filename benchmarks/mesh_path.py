"""The lab's request path through the sandbox mesh: gateway → splitdim → kvstore, with sidecars and mTLS.

Targets (issue 4): 500 req/s sustained for 60 s with p99 < 25 ms and 0 errors; per-proxy-hop overhead p50
≤ 0.5 ms. Also prints the sandbox's CPU time per request (all its processes), the honest figure on a shared
machine. Run: .venv/bin/python benchmarks/mesh_path.py [RATE] [SECONDS] [--app-workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._lab import apply_lab, client, wait_ready  # noqa: E402
from benchmarks._load import open_loop, pct  # noqa: E402
from sandbox import process  # noqa: E402

NS = "bench"


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its children (the app hosts)."""
    return sum(tree_cpu_split(pid)[:2])


def tree_cpu_split(pid: int) -> tuple[float, float, float]:
    """(user, system) CPU seconds of a process and its children, and the children's share of them."""
    root = psutil.Process(pid)
    user = system = children = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        user, system = user + t.user, system + t.system
        if p.pid != pid:
            children += t.user + t.system
    return user, system, children


def addresses(dyn) -> tuple[str, str, str]:
    svc = dyn.resources.get(api_version="v1", kind="Service").get(name="splitdim-istio", namespace=NS)
    ip = svc.status.loadBalancer.ingress[0].ip
    port = next(p.nodePort for p in svc.spec.ports if p.port == 80)
    kv = dyn.resources.get(api_version="v1", kind="Pod").get(name="kvstore-0", namespace=NS).status.podIP
    splitdim = [
        p
        for p in dyn.resources.get(api_version="v1", kind="Pod").get(namespace=NS).items
        if p.metadata.labels.get("app") == "splitdim"
    ][0].status.podIP
    return f"http://{ip}:{port}", kv, splitdim


async def sequential(url: str, n: int, proxy: str | None = None) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            t0 = time.perf_counter()
            async with s.get(url, proxy=proxy) as r:
                await r.read()
                assert r.status == 200, r.status
            out.append(time.perf_counter() - t0)
    return out


def inner(ip: str) -> str:
    a, b, c, d = ip.split(".")
    return f"{a}.{int(b) + 3}.{c}.{d}"  # the pod's private address (sandbox.network.Network.inner)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rate", nargs="?", type=float, default=500)
    ap.add_argument("seconds", nargs="?", type=float, default=60)
    ap.add_argument("--app-workers", type=int, help="the sandbox's --app-workers (default: its own default)")
    args = ap.parse_args()
    rate, seconds = args.rate, args.seconds
    extra = ["--app-workers", str(args.app_workers)] if args.app_workers is not None else []
    with tempfile.TemporaryDirectory() as tmp:
        sb = process.start(Path(tmp), *extra)
        try:
            dyn = client(sb.kubeconfig, Path(tmp) / "discovery.json")
            apply_lab(dyn, NS)
            wait_ready(dyn, NS, 4)
            base, kv, splitdim = addresses(dyn)
            # Remove the lab's fault injection and STRICT mode's effect on the host probe: the hop measurement
            # talks plaintext to kvstore's sidecar, which STRICT refuses.
            for kind, api_version, name in (
                ("VirtualService", "networking.istio.io/v1", "kvstore-500"),
                ("PeerAuthentication", "security.istio.io/v1", "default"),
            ):
                dyn.resources.get(api_version=api_version, kind=kind).delete(name=name, namespace=NS)
            n = 400
            direct = asyncio.run(sequential(f"http://{inner(kv)}:8081/api/list", n))
            one_hop = asyncio.run(sequential(f"http://{kv}:8081/api/list", n))
            two_hops = asyncio.run(
                sequential(f"http://kvstore.{NS}:8081/api/list", n, proxy=f"http://{splitdim}:15001")
            )
            asyncio.run(open_loop([f"{base}/api/clear"], 100, 3))  # warm the connection pools
            # The load generator's own full garbage collections (over the client's caches) are not the mesh's.
            gc.collect()
            gc.freeze()
            cpu0 = tree_cpu(sb.pid)
            load = asyncio.run(open_loop([f"{base}/api/clear"], rate, seconds))
            cpu = tree_cpu(sb.pid) - cpu0
        finally:
            sb.stop()
    d50, h1, h2 = pct(direct, 50), pct(one_hop, 50), pct(two_hops, 50)
    print(
        f"per-hop overhead (sequential, {n} requests each, p50): kvstore direct {d50 * 1000:.2f} ms, "
        f"through its inbound sidecar {h1 * 1000:.2f} ms, through a client sidecar + mTLS + inbound sidecar "
        f"{h2 * 1000:.2f} ms"
    )
    print(
        f"  => {(h1 - d50) * 1000:.2f} ms for one plaintext hop, {(h2 - d50) / 2 * 1000:.2f} ms per hop over mTLS "
        f"(target <= 0.5 ms)"
    )
    lat = load.latencies
    errors = load.errors + sum(c for code, c in load.codes.items() if code != 200)
    print(
        f"gateway -> splitdim -> kvstore, GET /api/clear at {rate:.0f} req/s for {seconds:.0f} s: sent {load.sent}, "
        f"achieved {load.sent / load.elapsed:.1f} req/s, errors {errors} {dict(load.codes)}"
    )
    print(
        f"  latency from intended send time: p50 {pct(lat, 50) * 1000:.2f} ms, p90 {pct(lat, 90) * 1000:.2f} ms, "
        f"p99 {pct(lat, 99) * 1000:.2f} ms, max {max(lat) * 1000:.2f} ms (target p99 < 25 ms, 0 errors)"
    )
    print(
        f"  sandbox CPU (API, proxies and app hosts) {cpu / load.sent * 1000:.3f} ms/request, "
        f"{cpu / load.elapsed * 100:.0f}% of a core; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
