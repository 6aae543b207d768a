"""Short bursts of the step's own traffic, so observed-traffic checks can verify a step by themselves.

The background generator (the `traffic` app) may be absent or just restarted; a check then has no
traffic to look at. A burst replays the step's traffic streams (same paths, headers and relative rates)
for a couple of seconds while the metrics source watches, so shares such as "1 in 5 requests carries
`user: test`" hold exactly, whether or not the generator runs as well.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from labsteps.content import Step

REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class TrafficPlan:
    """The `traffic` action of a step: where requests go and the streams with their rates."""

    via: str
    streams: tuple[Mapping[str, Any], ...]


def plan_for(step: Step) -> TrafficPlan | None:
    """The step's last `traffic` action (the traffic it leaves running), if any."""
    for action in reversed(step.actions):
        if action.type == "traffic":
            return TrafficPlan(action.params["via"], tuple(action.params["streams"]))
    return None


@dataclass
class BurstResult:
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)  # HTTP status (or "error") → count

    def summary(self) -> str:
        parts = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items(), key=lambda kv: str(kv[0])))
        return f"burst of {self.sent} requests ({parts})" if self.sent else "no burst"


def schedule(streams: Sequence[Mapping[str, Any]], total: int) -> list[Mapping[str, Any]]:
    """`total` requests split between streams in proportion to their rates, evenly interleaved."""
    rate_sum = sum(float(s["rate"]) for s in streams)
    counts = [round(total * float(s["rate"]) / rate_sum) for s in streams]
    slots = [((j + 0.5) / count, i) for i, count in enumerate(counts) for j in range(count)]
    return [streams[i] for _, i in sorted(slots)]


async def _send(base_url: str, requests: Sequence[Mapping[str, Any]], duration: float) -> BurstResult:
    result = BurstResult()
    gap = duration / max(1, len(requests))
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, limits=limits, trust_env=False) as client:

        async def one(index: int, stream: Mapping[str, Any]) -> None:
            await asyncio.sleep(index * gap)
            try:
                response = await client.request(
                    stream.get("method", "GET"),
                    stream["path"],
                    headers=dict(stream.get("headers") or {}),
                    json=stream.get("body"),
                )
                result.statuses[response.status_code] += 1
            except httpx.HTTPError:
                result.statuses["error"] += 1
            result.sent += 1

        await asyncio.gather(*(one(i, stream) for i, stream in enumerate(requests)))
    return result


def send(base_url: str, streams: Sequence[Mapping[str, Any]], total: int, duration: float) -> BurstResult:
    """Send `total` requests of `streams` spread over `duration` seconds; returns once all are answered."""
    return asyncio.run(_send(base_url, schedule(streams, total), duration))
