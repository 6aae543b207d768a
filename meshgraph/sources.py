"""Where the graph's numbers come from: a Prometheus server, or the proxies' metrics endpoints directly.

Both sources answer the same two calls, an instant `rates` query and an instant `quantiles` query
(see meshgraph.queries), with the same semantics, so the same graph comes out of either. The calls
the graph needs, request rates, p95 response times and mTLS shares, are sets of these queries
(`meshgraph.build.collect`). A source that cannot answer raises `SourceError` with a sentence fit to
show a student; the graph pipeline turns it into the graph's status, never into a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson

from meshgraph.exposition import Parser
from meshgraph.memory import paused_gc
from meshgraph.promql import Sample, Series, evaluate_quantile, evaluate_rate
from meshgraph.queries import DURATION_BUCKETS, REQUESTS, QuantileQuery, RateQuery

log = logging.getLogger(__name__)


class SourceError(Exception):
    """The metrics could not be read; the message says why, in words a student understands."""


class MetricsSource(Protocol):
    kind: str  # "prometheus" | "embedded", shown on the page
    location: str  # the Prometheus URL, or what the embedded source scrapes

    async def rates(self, query: RateQuery, window_s: int, at: float) -> list[Sample]: ...

    async def quantiles(self, query: QuantileQuery, window_s: int, at: float) -> list[Sample]: ...

    async def explain_empty(self, namespace: str, window_s: int) -> str:
        """Why a namespace shows no requests: a sentence for the graph's status line."""
        ...

    def instant(self) -> float:
        """The latest time the source can answer for with every proxy's sample in (queries use it)."""
        ...

    async def news(self) -> None:
        """Return when fresh data shows a change worth a graph now (see EmbeddedSource.news); may never."""
        ...

    async def aclose(self) -> None: ...


def vector_samples(answer: dict) -> list[Sample]:
    """The samples of a decoded Prometheus instant-vector answer (NaN values left out, as Kiali does)."""
    out = []
    for item in answer["data"]["result"]:
        value = float(item["value"][1])
        if value == value:  # not NaN
            out.append(Sample(item["metric"], value))
    return out


class PrometheusSource:
    """Prometheus' HTTP API, sent Kiali's own PromQL."""

    kind = "prometheus"

    def __init__(self, url: str, timeout: float = 5.0, scrape_interval: float = 1.0) -> None:
        self.location = url.rstrip("/")
        self.scrape_interval = scrape_interval
        self._client = httpx.AsyncClient(base_url=self.location, timeout=timeout)

    def instant(self) -> float:
        """One scrape interval ago: a window ending now could miss scrapes still in flight, and then
        Prometheus extrapolates the window's end short (its 1.1-interval rule)."""
        return time.time() - self.scrape_interval

    async def _vector(self, promql: str, at: float) -> list[Sample]:
        try:
            response = await self._client.get("/api/v1/query", params={"query": promql, "time": f"{at:.3f}"})
        except httpx.HTTPError as exc:
            raise SourceError(f"Prometheus at {self.location} is unreachable: {exc or type(exc).__name__}") from exc
        with paused_gc():
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                body = None
            if response.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
                reason = (body.get("error") if isinstance(body, dict) else None) or response.reason_phrase
                raise SourceError(f"Prometheus at {self.location} answered HTTP {response.status_code}: {reason}")
            return vector_samples(body)

    async def rates(self, query: RateQuery, window_s: int, at: float) -> list[Sample]:
        return await self._vector(query.promql(window_s), at)

    async def quantiles(self, query: QuantileQuery, window_s: int, at: float) -> list[Sample]:
        return await self._vector(query.promql(window_s), at)

    async def explain_empty(self, namespace: str, window_s: int) -> str:
        try:
            anything = await self._vector(f"count({REQUESTS})", time.time())
        except SourceError as exc:
            return str(exc)
        if not anything:
            return (
                f"Prometheus at {self.location} holds no Istio request metrics: either no request has gone "
                "through a sidecar yet, or Prometheus does not scrape the proxies."
            )
        return f"No requests in namespace {namespace} in the last {window_s} s."

    async def news(self) -> None:
        """Never: Prometheus does not tell when it scraped, so its graphs follow the refresh period alone."""
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True)
class Target:
    """One proxy's metrics endpoint."""

    namespace: str
    pod: str
    url: str


TargetLister = Callable[[], Awaitable[list[Target]]]


class EmbeddedSource:
    """Scrapes every proxy itself on a fixed schedule and keeps each series' recent points in memory.

    Like Prometheus it stamps each target's samples with the time its scrape started, keeps series
    of vanished pods until they age out, and evaluates queries with Prometheus' arithmetic
    (meshgraph.promql). Points older than `retention` seconds are dropped, so memory stays bounded by
    (series x retention / interval) points. Use `async with`, which runs the scrape loop.

    Two deliberate differences make it quicker than Prometheus to show a change, without changing
    steady rates: a series that appears in a proxy's answer was 0 at that proxy's previous scrape
    (Istio creates a counter at its first request), so a new error code counts from its first scrape
    rather than its second; and queries are answered for the end of the last complete scrape round,
    not for a moment one interval ago.

    It also knows when a scrape brought news (`news`): a request series that changed after `quiet_s`
    seconds without changing, or a new one. With `quiet_s` equal to the graph's rate window that is
    exactly a rate the last graph showed as zero becoming positive: a new edge, or a new response
    code or flag on an edge (the first failure of a fault). The poller then refreshes at once instead
    of waiting for its next period; steady traffic brings no news.
    """

    kind = "embedded"
    METRICS = (REQUESTS, DURATION_BUCKETS)

    def __init__(
        self, targets: TargetLister, interval: float = 1.0, retention: float = 120.0, quiet_s: float = 10.0
    ) -> None:
        self._targets = targets
        self.interval = interval
        self.retention = retention
        self.quiet_s = quiet_s
        self.location = f"the sidecars' metrics endpoints (scraped every {interval:g} s)"
        self._client = httpx.AsyncClient(timeout=interval)
        self._parser = Parser(self.METRICS)
        self._series: dict[tuple[str, str, str], Series] = {}
        self._scraped: set[str] = set()  # targets that answered at least once
        self._failures: dict[str, str] = {}  # target URL -> last error
        self._discovery_error = ""
        self._rounds = 0  # scrape rounds done; rates need two
        self._previous: dict[str, float] = {}  # target URL -> stamp of its last successful scrape
        self._round_end = 0.0  # the latest stamp of the last complete round
        self._task: asyncio.Task | None = None
        self._moved = False  # a request series started moving in the current round
        self._news = asyncio.Event()

    async def __aenter__(self) -> EmbeddedSource:
        self._task = asyncio.create_task(self._run(), name="meshgraph-embedded-scrape")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        start = time.monotonic()
        ticks = 0
        while True:
            await self.scrape()
            ticks += 1
            # Keep the schedule on absolute time so a slow round does not shift the next ones.
            delay = start + ticks * self.interval - time.monotonic()
            if delay < 0:
                ticks += math.ceil(-delay / self.interval)
                delay = start + ticks * self.interval - time.monotonic()
            await asyncio.sleep(delay)

    async def scrape(self) -> None:
        """One round: every current target once, concurrently."""
        try:
            targets = await self._targets()
            self._discovery_error = ""
        except Exception as exc:  # the cluster may be down; keep the points already scraped
            self._discovery_error = f"cannot list the proxies: {exc}"
            return
        self._moved = False
        stamps = await asyncio.gather(*(self._scrape_one(t) for t in targets))
        self._rounds += 1
        self._round_end = max(stamps, default=time.time())
        self._expire(time.time() - self.retention)
        if self._moved:
            self._news.set()

    def instant(self) -> float:
        return self._round_end or time.time()

    async def _scrape_one(self, target: Target) -> float:
        """Scrape one target; returns the stamp its samples got."""
        stamp = time.time()
        try:
            response = await self._client.get(target.url)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self._failures[target.url] = f"{target.pod}: {exc or type(exc).__name__}"
            return stamp
        self._failures.pop(target.url, None)
        self._scraped.add(target.url)
        previous = self._previous.get(target.url)
        self._previous[target.url] = stamp
        series = self._series
        quiet = stamp - self.quiet_s
        moved = False
        for metric, raw, labels, value in self._parser.samples(response.text):
            key = (target.url, metric, raw)
            s = series.get(key)
            if s is None:
                s = series[key] = Series(metric, labels, deque())
                if previous is not None:
                    s.points.append((previous, 0.0))  # absent from the previous answer: not counted yet
                    if metric == REQUESTS:
                        moved = True
                        s.moved = stamp
            elif value != s.points[-1][1] and metric == REQUESTS:
                if s.moved < quiet:
                    moved = True
                s.moved = stamp
            s.points.append((stamp, value))
        if moved:
            self._moved = True
        return stamp

    def _expire(self, oldest: float) -> None:
        empty = []
        for key, s in self._series.items():
            points = s.points
            while points and points[0][0] < oldest:
                points.popleft()
            if not points:
                empty.append(key)
        for key in empty:
            del self._series[key]

    def _check(self) -> None:
        if not self._series and (self._discovery_error or self._failures):
            reason = self._discovery_error or "; ".join(sorted(self._failures.values())[:3])
            raise SourceError(f"The proxies' metrics could not be scraped: {reason}")

    def series(self) -> list[Series]:
        """Every series held, with its points (one per target and label set)."""
        return list(self._series.values())

    async def rates(self, query: RateQuery, window_s: int, at: float) -> list[Sample]:
        self._check()
        return evaluate_rate(query, self.series(), window_s, at)

    async def quantiles(self, query: QuantileQuery, window_s: int, at: float) -> list[Sample]:
        self._check()
        return evaluate_quantile(query, self.series(), window_s, at)

    async def news(self) -> None:
        """Return after a scrape round that brought news (at once if one came since the last call)."""
        await self._news.wait()
        self._news.clear()

    async def explain_empty(self, namespace: str, window_s: int) -> str:
        if self._rounds < 2 and not self._discovery_error:
            return "The embedded source is collecting its first samples from the proxies: rates follow in seconds."
        if self._discovery_error:
            return f"The proxies of namespace {namespace} are unknown: {self._discovery_error}"
        if not self._scraped and not self._failures:
            return (
                f"No pod in namespace {namespace} has a sidecar yet: label the namespace "
                "istio-injection=enabled and restart its workloads."
            )
        if self._failures:
            return "Some proxies could not be scraped: " + "; ".join(sorted(self._failures.values())[:3])
        return f"No requests in namespace {namespace} in the last {window_s} s."

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._client.aclose()


def load_address_map(path: str) -> dict[str, str]:
    """pod IP -> "host:port" of its metrics endpoint, from a Prometheus file_sd list (the sandbox's).

    Needed only where pod addresses are not directly reachable (the sandbox's single-address mode).
    """
    try:
        with open(path) as handle:
            groups = json.load(handle)
    except (OSError, ValueError) as exc:
        log.warning("cannot read scrape targets from %s: %s", path, exc)
        return {}
    return {
        group["labels"]["pod_ip"]: group["targets"][0]
        for group in groups
        if group.get("targets") and "pod_ip" in (group.get("labels") or {})
    }
