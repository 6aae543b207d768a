"""50 student namespaces, each with the whole lab and 5 req/s of traffic through its own gateway.

Target (issue 4): p99 < 100 ms and 0 errors. Run: .venv/bin/python benchmarks/mesh_scale.py [NAMESPACES] [SECONDS] [--app-workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._lab import apply_lab, client, wait_ready  # noqa: E402
from benchmarks._load import open_loop, pct  # noqa: E402
from benchmarks.mesh_path import tree_cpu  # noqa: E402
from sandbox import process  # noqa: E402

RATE_PER_NAMESPACE = 5.0


def gateway_url(dyn, ns: str) -> str:
    svc = dyn.resources.get(api_version="v1", kind="Service").get(name="splitdim-istio", namespace=ns)
    port = next(p.nodePort for p in svc.spec.ports if p.port == 80)
    return f"http://{svc.status.loadBalancer.ingress[0].ip}:{port}/api/clear"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("namespaces", nargs="?", type=int, default=50)
    ap.add_argument("seconds", nargs="?", type=float, default=30)
    ap.add_argument("--app-workers", type=int, help="the sandbox's --app-workers (default: its own default)")
    args = ap.parse_args()
    namespaces, seconds = args.namespaces, args.seconds
    extra = ["--app-workers", str(args.app_workers)] if args.app_workers is not None else []
    with tempfile.TemporaryDirectory() as tmp:
        sb = process.start(Path(tmp), *extra)
        try:
            dyn = client(sb.kubeconfig, Path(tmp) / "discovery.json")
            names = [f"lab-{i}" for i in range(namespaces)]
            for ns in names:
                apply_lab(dyn, ns)
                # The lab's last steps inject faults on purpose; this benchmark measures the healthy mesh.
                dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService").delete(
                    name="kvstore-500", namespace=ns
                )
            wait_ready(dyn, None, namespaces * 4 + 1, timeout=120)
            urls = [gateway_url(dyn, ns) for ns in names]
            asyncio.run(open_loop(urls, namespaces * RATE_PER_NAMESPACE / 2, 3))  # warm up
            # The load generator's own full garbage collections (over the client's caches) are not the mesh's.
            gc.collect()
            gc.freeze()
            cpu0 = tree_cpu(sb.pid)
            load = asyncio.run(open_loop(urls, namespaces * RATE_PER_NAMESPACE, seconds))
            cpu = tree_cpu(sb.pid) - cpu0
        finally:
            sb.stop()
    errors = load.errors + sum(c for code, c in load.codes.items() if code != 200)
    lat = load.latencies
    print(
        f"{namespaces} namespaces x whole lab, {RATE_PER_NAMESPACE:.0f} req/s each "
        f"({namespaces * RATE_PER_NAMESPACE:.0f} req/s in all) for {seconds:.0f} s: sent {load.sent}, errors {errors}"
    )
    print(
        f"  latency from intended send time: p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, "
        f"max {max(lat) * 1000:.1f} ms (target p99 < 100 ms, 0 errors)"
    )
    print(
        f"  sandbox CPU {cpu / load.sent * 1000:.3f} ms/request, {cpu / load.elapsed * 100:.0f}% of a core; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
