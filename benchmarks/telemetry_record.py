"""Cost of `ProxyMetrics.record` on the proxy hot path, and of rendering an exposition.

Target: <= 10 us per record (every proxied request records 2-4 samples).
Run: .venv/bin/python benchmarks/telemetry_record.py [RECORDS]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.mesh.telemetry import UNKNOWN_PEER, Peer, ProxyMetrics  # noqa: E402

CODES = (200, 200, 200, 200, 201, 404, 503, 0)
FLAGS = ("-", "-", "-", "-", "-", "-", "UF", "NR")


def peer(name: str, version: str) -> Peer:
    return Peer(
        workload=f"{name}-{version}",
        namespace="lab",
        principal=f"spiffe://cluster.local/ns/lab/sa/{name}",
        app=name,
        version=version,
        canonical_service=name,
        canonical_revision=version,
    )


def bench_record(records: int) -> float:
    """ns per record over a realistic mix: both reporters, a few codes and flags, varying sizes."""
    metrics = ProxyMetrics()
    splitdim, kv1, kv2 = peer("splitdim", "v1"), peer("kvstore", "v1"), peer("kvstore", "v2")
    calls = []
    for i in range(64):
        dst = kv1 if i % 2 else kv2
        code, flags = CODES[i % len(CODES)], FLAGS[i % len(FLAGS)]
        calls.append(("source", splitdim, dst, code, flags, "mutual_tls", i * 3.7 % 900, 120 + i, 40 * i))
        calls.append(("destination", UNKNOWN_PEER, splitdim, code, flags, "none", i * 0.9, 300, 2000 + i))
    record = metrics.record
    start = time.perf_counter_ns()
    for n in range(records):
        reporter, src, dst, code, flags, policy, ms, req, resp = calls[n & 127]
        record(
            reporter,
            src,
            dst,
            "kvstore.lab.svc.cluster.local",
            "kvstore",
            code,
            flags,
            policy,
            ms,
            req,
            resp,
        )
    return (time.perf_counter_ns() - start) / records


def bench_exposition(label_sets: int) -> tuple[float, int, int]:
    """ms to render `label_sets` distinct label sets, with the sample-line count and byte size."""
    metrics = ProxyMetrics()
    src = peer("splitdim", "v1")
    for i in range(label_sets):
        dst = peer(f"svc{i}", "v1")
        metrics.record("source", src, dst, f"svc{i}.lab.svc.cluster.local", f"svc{i}", 200, "-",
                       "mutual_tls", 3.5, 200, 900)  # fmt: skip
    start = time.perf_counter()
    text = metrics.exposition()
    elapsed = (time.perf_counter() - start) * 1000
    samples = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    return elapsed, samples, len(text)


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    bench_record(10_000)  # warm up
    print(f"record: {bench_record(records):.0f} ns/record over {records} records (target <= 10000)")
    for label_sets in (150, 1_000, 10_000):
        ms, samples, size = bench_exposition(label_sets)
        print(f"exposition: {label_sets} label sets = {samples} samples, {size / 1e6:.1f} MB in {ms:.1f} ms")


if __name__ == "__main__":
    main()
