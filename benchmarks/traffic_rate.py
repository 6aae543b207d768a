"""The highest rate one traffic generator process holds, and its CPU per request, beside wrk and hey.

All three load the same trivial loopback server (`python -m traffic.echo`, uvloop) in the same run.
`--pin` pins the server to CPU 1 and the load tool to CPU 0: use it only on an otherwise idle machine
(a pinned process cannot move away from a neighbour's load).

- Generator: a fresh process per trial runs `traffic.generator` at a fixed rate for a warm-up second and
  SECONDS measured seconds; a rate is held when sends, completions (all 200) per second are both >= 99 %
  of the target, nothing was dropped and the send lag p99 stayed under 50 ms (on schedule). Rates step up until one is not held, then the gap to the last
  held rate is bisected. Both transports are measured (aiohttp, the default, and stock httpcore).
- CPU per request: the process's user+system CPU time over the measured seconds / completed requests.
- wrk (closed loop, 1 thread, 8 connections) at its maximum; hey (8 workers) at its maximum and rate-
  limited to the generator's best rate. CPU per request from the child's rusage.

Run: .venv/bin/python benchmarks/traffic_rate.py [SECONDS] [--pin]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SERVER_CPU, LOAD_CPU = {1}, {0}
STEPS = (250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000)
# A generator that keeps the rate only by running late is not holding it.
MAX_SEND_LAG_MS = 50


PIN = "--pin" in sys.argv


def pinned(cpus: set[int]) -> dict:
    """Popen arguments that pin the child to `cpus` (with --pin, when the machine has them)."""
    if not PIN or len(os.sched_getaffinity(0)) < 2:
        return {}
    return {"preexec_fn": lambda: os.sched_setaffinity(0, cpus)}


def start_echo() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "traffic.echo"], cwd=REPO, stdout=subprocess.PIPE, text=True, **pinned(SERVER_CPU)
    )
    return proc, proc.stdout.readline().split()[-1]


# --- one generator trial, in a child process


async def trial(url: str, rate: float, seconds: float, transport: str) -> dict:
    import psutil

    from traffic.generator import Generator, Options, Stream, prepare
    from traffic.windows import merge_windows

    prepare()

    collected = []
    generator = Generator(url, [Stream("s", rate=rate)], collected.append, Options(transport=transport))
    task = asyncio.create_task(generator.run())
    while len(collected) < 2:  # the first window is partial; measure from the second boundary on
        await asyncio.sleep(0.01)
    first, cpu0 = len(collected), time.process_time()
    while len(collected) < first + seconds:
        await asyncio.sleep(0.01)
    cpu = time.process_time() - cpu0
    port = int(url.rsplit(":", 1)[1])
    connections = sum(1 for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port)
    generator.stop()
    await task
    windows = [w.streams["s"] for w in collected[first : first + int(seconds)]]
    merged = merge_windows(windows)
    span = sum(w.duration for w in windows)
    return {
        "rate": rate,
        "transport": transport,
        "sent_per_s": merged.sent / span,
        "ok_per_s": merged.codes.get("200", 0) / span,
        "other_codes": {c: n for c, n in merged.codes.items() if c != "200"},
        "dropped": merged.dropped,
        "cpu_us_per_request": cpu / max(merged.completed, 1) * 1e6,
        "cpu_share": cpu / span,
        "connections": connections,
        "latency_ms": merged.latency.summary(),
        "send_lag_ms": merged.send_lag.summary(),
    }


def run_trial(url: str, rate: float, seconds: int, transport: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--trial", url, str(rate), str(seconds), transport],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        **pinned(LOAD_CPU),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def held(result: dict) -> bool:
    target = result["rate"]
    return (
        result["sent_per_s"] >= 0.99 * target
        and result["ok_per_s"] >= 0.99 * target
        and result["dropped"] == 0
        and not result["other_codes"]
        and result["send_lag_ms"]["p99"] <= MAX_SEND_LAG_MS
    )


def highest_rate(url: str, seconds: int, transport: str) -> tuple[dict | None, list[dict]]:
    trials, best, failed_at = [], None, None
    for rate in STEPS:
        result = run_trial(url, rate, seconds, transport)
        trials.append(result)
        if not held(result):
            failed_at = rate
            break
        best = result
    low = best["rate"] if best else 0
    for _ in range(2):  # bisect between the last held and the first failed step
        if failed_at is None or failed_at - low <= 100:
            break
        middle = (low + failed_at) // 2
        result = run_trial(url, middle, seconds, transport)
        trials.append(result)
        if held(result):
            best, low = result, middle
        else:
            failed_at = middle
    return best, trials


# --- wrk and hey


def child_cpu(argv: list[str]) -> tuple[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, check=True, **pinned(LOAD_CPU)).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def wrk(url: str, seconds: int) -> dict | None:
    if not shutil.which("wrk"):
        return None
    out, cpu = child_cpu(["wrk", "-t1", "-c8", f"-d{seconds}s", url + "/"])
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"tool": "wrk -t1 -c8 (max)", "req_per_s": total / seconds, "cpu_us_per_request": cpu / total * 1e6}


def hey(url: str, seconds: int, rate: float | None) -> dict | None:
    if not shutil.which("hey"):
        return None
    argv = ["hey", "-z", f"{seconds}s", "-c", "8", "-cpus", "1"]
    if rate:
        argv += ["-q", str(rate / 8)]
    out, cpu = child_cpu([*argv, url + "/"])
    per_s = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    total = sum(int(n) for n in codes.values()) or per_s * seconds
    label = f"hey -c8 -q{rate / 8:g} ({rate:g}/s)" if rate else "hey -c8 (max)"
    return {"tool": label, "req_per_s": per_s, "cpu_us_per_request": cpu / total * 1e6}


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--pin"]
    seconds = int(args[0]) if args else 5
    server, url = start_echo()
    try:
        print(
            f"target {url}; load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; {seconds} s per trial;"
            f" {'pinned' if PIN else 'not pinned'}"
        )
        best = {}
        for transport in ("aiohttp", "httpcore"):
            winner, trials = highest_rate(url, seconds, transport)
            best[transport] = winner
            print(f"\ngenerator, transport {transport}:")
            print("  target  sent/s    ok/s  dropped  CPU us/req  CPU share  conns  lat p50/p99 ms  send lag p99 ms")
            for t in trials:
                print(
                    f"  {t['rate']:6.0f}  {t['sent_per_s']:6.0f}  {t['ok_per_s']:6.0f}  {t['dropped']:7d}"
                    f"  {t['cpu_us_per_request']:10.0f}  {t['cpu_share']:9.2f}  {t['connections']:5d}"
                    f"  {t['latency_ms']['p50']:6.1f}/{t['latency_ms']['p99']:<7.1f}  {t['send_lag_ms']['p99']:8.1f}"
                    f"  {'held' if held(t) else 'NOT held'}"
                )
            print(f"  highest rate held: {winner['rate'] if winner else 0:.0f} req/s")
        top = best["aiohttp"]["rate"] if best["aiohttp"] else None
        print("\nreference tools on the same server:")
        for result in (wrk(url, seconds), hey(url, seconds, None), hey(url, seconds, top)):
            if result:
                print(
                    f"  {result['tool']:28s} {result['req_per_s']:8.0f} req/s  {result['cpu_us_per_request']:6.0f} us CPU/req"
                )
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--trial":
        import uvloop

        url, rate, seconds, transport = sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        print(json.dumps(uvloop.run(trial(url, rate, seconds, transport))))
    else:
        main()
