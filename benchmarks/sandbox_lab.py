"""Apply the whole lab (every step's objects) to a fresh namespace; time until every pod is Ready.

Target (issue 2): every pod Ready within 1 s of the apply. Run: .venv/bin/python benchmarks/sandbox_lab.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._lab import apply_lab, client, percentile, wait_ready  # noqa: E402
from sandbox import process  # noqa: E402

RUNS = 10
PODS_PER_LAB = 4  # kvstore-0, splitdim, splitdim-2, splitdim-istio


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sb = process.start(Path(tmp))
        try:
            dyn = client(sb.kubeconfig, Path(tmp) / "discovery.json")
            apply_s, ready_s = [], []
            for i in range(RUNS):
                ns = f"bench-{i}"
                t0 = time.perf_counter()
                apply_lab(dyn, ns)
                t1 = time.perf_counter()
                wait_ready(dyn, ns, PODS_PER_LAB)
                t2 = time.perf_counter()
                apply_s.append(t1 - t0)
                ready_s.append(t2 - t0)
        finally:
            sb.stop()
    print(f"whole lab applied {RUNS} times, {PODS_PER_LAB} pods each")
    print(
        f"  apply (all objects, server-side apply): p50 {percentile(apply_s, 50) * 1000:.0f} ms, "
        f"max {max(apply_s) * 1000:.0f} ms"
    )
    print(
        f"  apply start -> every pod Ready:          p50 {percentile(ready_s, 50) * 1000:.0f} ms, "
        f"max {max(ready_s) * 1000:.0f} ms (target <= 1000 ms)"
    )


if __name__ == "__main__":
    main()
