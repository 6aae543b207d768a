"""A small open-loop load generator for the benchmarks: fixed rate against absolute time, latency measured
from each request's intended send time (so a stalled server cannot hide behind a slowed-down client)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadResult:
    sent: int = 0
    codes: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, from intended send time
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return self.codes.get(200, 0)


async def open_loop(
    urls: list[str], rate: float, seconds: float, headers: dict | None = None, max_in_flight: int = 2000
) -> LoadResult:
    """Spread `rate` requests/s over `urls` (round robin) for `seconds`."""
    result = LoadResult()
    conn = aiohttp.TCPConnector(limit=max_in_flight, limit_per_host=max_in_flight, ttl_dns_cache=None)
    in_flight: set[asyncio.Task] = set()
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(url: str, intended: float) -> None:
            try:
                async with session.get(url, headers=headers) as r:
                    await r.read()
                    result.codes[r.status] = result.codes.get(r.status, 0) + 1
            except (aiohttp.ClientError, TimeoutError):
                result.errors += 1
            result.latencies.append(time.perf_counter() - intended)

        start = time.perf_counter()
        n = 0
        total = int(rate * seconds)
        while n < total:
            now = time.perf_counter()
            due = int((now - start) * rate) + 1  # everything scheduled up to now, in one batch
            while n < min(due, total):
                intended = start + n / rate
                t = asyncio.ensure_future(one(urls[n % len(urls)], intended))
                in_flight.add(t)
                t.add_done_callback(in_flight.discard)
                n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        if in_flight:
            await asyncio.gather(*in_flight)
        result.sent = n
        result.elapsed = time.perf_counter() - start
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")
