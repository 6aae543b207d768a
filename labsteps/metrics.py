"""Istio's request metrics for observed-traffic checks, behind a small `MetricsSource` interface.

A source answers one question: how much did `istio_requests_total` grow in a namespace over a window,
per label set, among the series matching some label filters (`counts`). A caller that makes traffic
itself passes it as `while_observing`, and the source makes sure that traffic falls inside the window
it reports. The one implementation here, `ProxyScrapeSource`, reads every proxy's own metrics endpoint
(`:15020/stats/prometheus`, as Prometheus would) before and after and subtracts; a Prometheus source
can later answer from its history (running `while_observing` first, then waiting one scrape).
"""

from __future__ import annotations

import asyncio
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from labsteps.cluster import Cluster

Filter = str | Iterable[str]
METRIC = "istio_requests_total"
METRICS_PORT = 15020
SAMPLE_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Counts:
    """Increases of `istio_requests_total` per label set over `seconds`, and how they were obtained."""

    series: list[tuple[dict[str, str], float]]
    seconds: float
    query: str
    notes: list[str] = field(default_factory=list)  # e.g. proxies that could not be read

    def total(self, **label_filters: Filter) -> float:
        return sum(value for labels, value in self.series if matches(labels, label_filters))

    def by(self, label: str, **label_filters: Filter) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in self.series:
            if matches(labels, label_filters):
                out[labels.get(label, "")] = out.get(labels.get(label, ""), 0.0) + value
        return out


def matches(labels: Mapping[str, str], label_filters: Mapping[str, Filter]) -> bool:
    """Whether `labels` satisfy every filter (a value, or a list of accepted values)."""
    for name, wanted in label_filters.items():
        accepted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        if labels.get(name) not in accepted:
            return False
    return True


def promql(window_s: float, label_filters: Mapping[str, Filter]) -> str:
    """The PromQL a Prometheus source would run, shown in checks' debug text."""
    matchers = []
    for name, wanted in sorted(label_filters.items()):
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        matchers.append(f'{name}="{values[0]}"' if len(values) == 1 else f'{name}=~"{"|".join(values)}"')
    return f"sum(increase({METRIC}{{{','.join(matchers)}}}[{window_s:g}s]))"


class MetricsSource(ABC):
    @abstractmethod
    def counts(
        self,
        namespace: str,
        window_s: float,
        *,
        while_observing: Callable[[], object] | None = None,
        **label_filters: Filter,
    ) -> Counts:
        """Growth of istio_requests_total in `namespace` over (at most) `window_s` seconds, including the
        requests `while_observing` makes."""

    @abstractmethod
    def reachable(self) -> tuple[bool, str]:
        """Whether the source can be read now, and what it is (for the istio-installed check)."""


class ProxyScrapeSource(MetricsSource):
    """Scrape every mesh proxy of the namespace at the start and end of a short window."""

    def __init__(self, cluster: Cluster, sample_seconds: float = 2.0, settle_seconds: float = 0.3) -> None:
        self.cluster = cluster
        self.sample_seconds = sample_seconds  # the shortest window observed
        self.settle_seconds = settle_seconds  # lets the last responses be counted before the second scrape
        self.timeout = 2.0

    def reachable(self) -> tuple[bool, str]:
        self.cluster.list("Pod", "istio-system")  # raises ClusterError when the cluster is down
        return True, f"proxy metrics endpoints (:{METRICS_PORT}/stats/prometheus) scraped directly"

    def counts(
        self,
        namespace: str,
        window_s: float,
        *,
        while_observing: Callable[[], object] | None = None,
        **label_filters: Filter,
    ) -> Counts:
        targets = self._targets(namespace)
        started = time.monotonic()
        before, notes = asyncio.run(self._scrape(targets))
        if while_observing is not None:
            while_observing()
            time.sleep(self.settle_seconds)
        time.sleep(max(0.0, min(window_s, self.sample_seconds) - (time.monotonic() - started)))
        after, later_notes = asyncio.run(self._scrape(targets))
        elapsed = time.monotonic() - started
        series = []
        for key, value in after.items():
            previous = before.get(key, 0.0)
            increase = value - previous if value >= previous else value  # a restarted proxy starts at 0
            labels = dict(key[1])
            if increase > 0 and matches(labels, label_filters):
                series.append((labels, increase))
        return Counts(series, elapsed, promql(round(elapsed), label_filters), sorted({*notes, *later_notes}))

    def _targets(self, namespace: str) -> list[tuple[str, str]]:
        """(pod name, address) of every running pod with a mesh proxy: sidecars and gateways alike."""
        out = []
        for pod in self.cluster.list("Pod", namespace):
            status = pod.get("status") or {}
            spec = pod.get("spec") or {}
            containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
            if (
                status.get("phase") == "Running"
                and status.get("podIP")
                and any(c.get("name") == "istio-proxy" for c in containers)
            ):
                out.append((pod["metadata"]["name"], status["podIP"]))
        return out

    async def _scrape(self, targets: list[tuple[str, str]]) -> tuple[dict[tuple, float], list[str]]:
        async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as client:
            answers = await asyncio.gather(
                *(client.get(f"http://{ip}:{METRICS_PORT}/stats/prometheus") for _, ip in targets),
                return_exceptions=True,
            )
        values: dict[tuple, float] = {}
        notes = []
        for (pod, _), answer in zip(targets, answers, strict=True):
            if isinstance(answer, BaseException) or answer.status_code != 200:
                notes.append(f"{pod} unreadable")
                continue
            for labels, value in parse(answer.text, METRIC):
                values[(pod, tuple(sorted(labels.items())))] = value
        return values, notes


def parse(text: str, metric: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one metric from Prometheus text exposition format."""
    out = []
    for line in text.splitlines():
        if not line.startswith(metric):
            continue
        match = SAMPLE_LINE.match(line)
        if match is None or match["name"] != metric:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in LABEL.findall(match["labels"] or "")}
        out.append((labels, value))
    return out
