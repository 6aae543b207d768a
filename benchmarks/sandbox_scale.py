"""50 namespaces with the whole lab in one sandbox: API latency, memory, and restart time with that state.

Targets (issue 2): get/list p95 <= 20 ms, resident memory <= 1.5 GB, startup with the state <= 5 s.
Run: .venv/bin/python benchmarks/sandbox_scale.py [NAMESPACES]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._lab import apply_lab, client, percentile, wait_ready  # noqa: E402
from sandbox import process  # noqa: E402

PODS_PER_LAB = 4
SYSTEM_PODS = 1  # istiod
REQUESTS_PER_KIND = 400
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(base: str, namespaces: int) -> dict[str, list[float]]:
    kinds = {
        "get pod": lambda c, i: c.get(f"/api/v1/namespaces/lab-{i % namespaces}/pods/kvstore-0"),
        "list pods (namespace)": lambda c, i: c.get(f"/api/v1/namespaces/lab-{i % namespaces}/pods"),
        "list pods (namespace, Table)": lambda c, i: c.get(
            f"/api/v1/namespaces/lab-{i % namespaces}/pods", headers={"Accept": TABLE}
        ),
        "get deployment": lambda c, i: c.get(f"/apis/apps/v1/namespaces/lab-{i % namespaces}/deployments/splitdim"),
        "list services (all namespaces)": lambda c, i: c.get("/api/v1/services"),
        "list pods (all namespaces)": lambda c, i: c.get("/api/v1/pods"),
    }
    out: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=10) as c:
        for name, call in kinds.items():
            times = []
            for i in range(REQUESTS_PER_KIND):
                t0 = time.perf_counter()
                r = call(c, i)
                times.append(time.perf_counter() - t0)
                r.raise_for_status()
            out[name] = times
    return out


def main() -> None:
    namespaces = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        sb = process.start(Path(tmp) / "first", state_dir=state)
        try:
            dyn = client(sb.kubeconfig, Path(tmp) / "discovery.json")
            t0 = time.perf_counter()
            for i in range(namespaces):
                apply_lab(dyn, f"lab-{i}")
            wait_ready(dyn, None, namespaces * PODS_PER_LAB + SYSTEM_PODS, timeout=120)
            setup = time.perf_counter() - t0
            latencies = measure(sb.server, namespaces)
            memory = rss_mib(sb.pid)
        finally:
            sb.stop()
        t0 = time.perf_counter()
        sb = process.start(Path(tmp) / "second", state_dir=state)
        started = time.perf_counter() - t0
        try:
            dyn = client(sb.kubeconfig, Path(tmp) / "discovery2.json")
            ready = wait_ready(dyn, None, namespaces * PODS_PER_LAB + SYSTEM_PODS, timeout=120) + started
        finally:
            sb.stop()
    print(f"{namespaces} namespaces x whole lab ({namespaces * PODS_PER_LAB} pods) applied in {setup:.1f} s")
    print(f"{'request':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   ({REQUESTS_PER_KIND} sequential each)")
    for name, times in latencies.items():
        print(
            f"{name:34} {percentile(times, 50) * 1000:8.2f} {percentile(times, 95) * 1000:8.2f} "
            f"{max(times) * 1000:8.2f}"
        )
    print(f"resident memory of the sandbox: {memory:.0f} MiB (target <= 1536 MiB)")
    print(f"restart with that state: API ready in {started:.2f} s, every pod Ready in {ready:.2f} s (target <= 5 s)")


if __name__ == "__main__":
    main()
