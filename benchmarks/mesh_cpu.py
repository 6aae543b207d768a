"""CPU the sandbox spends per request on the lab's path (gateway → splitdim → kvstore, sidecars, mTLS).

The honest figure on a shared machine: the sandbox processes' user + system CPU time over a run of
REQUESTS requests at RATE req/s, divided by the requests, next to the load generator's own CPU per
request and the wall-clock latency. With `--profile FILE` the sandbox runs under cProfile and writes its
statistics there (read them with `python -m pstats FILE`; profiling slows everything down).
Target (what 500 req/s on 2 cores needs, issue 4): well under 1 ms of sandbox CPU per request.
Run: .venv/bin/python benchmarks/mesh_cpu.py [RATE] [REQUESTS] [--profile FILE] [--app-workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._lab import apply_lab, client, wait_ready  # noqa: E402
from benchmarks._load import open_loop, pct  # noqa: E402
from benchmarks.mesh_path import NS, addresses, tree_cpu_split  # noqa: E402
from sandbox import process  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rate", nargs="?", type=float, default=200)
    ap.add_argument("requests", nargs="?", type=int, default=4000)
    ap.add_argument("--profile", type=Path)
    ap.add_argument("--app-workers", type=int, help="the sandbox's --app-workers (default: its own default)")
    args = ap.parse_args()
    if args.profile:
        os.environ["SANDBOX_PROFILE"] = str(args.profile.resolve())
    extra = ["--app-workers", str(args.app_workers)] if args.app_workers is not None else []
    with tempfile.TemporaryDirectory() as tmp:
        sb = process.start(Path(tmp), *extra)
        try:
            dyn = client(sb.kubeconfig, Path(tmp) / "discovery.json")
            apply_lab(dyn, NS)
            wait_ready(dyn, NS, 4)
            dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService").delete(
                name="kvstore-500", namespace=NS
            )
            base, _, _ = addresses(dyn)
            urls = [f"{base}/api/clear"]
            asyncio.run(open_loop(urls, 100, 2))  # warm the connection pools
            cpu0, own0, t0 = tree_cpu_split(sb.pid), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            load = asyncio.run(open_loop(urls, args.rate, args.requests / args.rate))
            cpu1, own1, t1 = tree_cpu_split(sb.pid), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        finally:
            sb.stop()
    n = load.sent
    user, system, hosts = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2]
    own = (own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
    errors = load.errors + sum(c for code, c in load.codes.items() if code != 200)
    lat = load.latencies
    print(
        f"{n} x GET /api/clear at {args.rate:.0f} req/s ({t1 - t0:.1f} s wall), errors {errors}: "
        f"sandbox CPU {(user + system) / n * 1000:.3f} ms/request (user {user / n * 1000:.3f} + system "
        f"{system / n * 1000:.3f}; {(user + system) / (t1 - t0) * 100:.0f}% of a core; in app hosts "
        f"{hosts / n * 1000:.3f}), "
        f"load generator {own / n * 1000:.3f} ms/request"
    )
    print(f"  machine load average while measuring: {os.getloadavg()[0]:.1f} (figures are noisy when others run)")
    print(f"  latency p50 {pct(lat, 50) * 1000:.2f} ms, p99 {pct(lat, 99) * 1000:.2f} ms, max {max(lat) * 1000:.1f} ms")
    if args.profile:
        print(f"  profile written to {args.profile} (python -m pstats {args.profile})")


if __name__ == "__main__":
    main()
