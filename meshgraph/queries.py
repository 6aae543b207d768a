"""Kiali's workload-graph queries as data, so both metrics sources run exactly the same ones.

A query is a metric, label matchers and a `by (...)` grouping. `PrometheusSource` renders it to the
PromQL text Kiali sends (kiali/kiali, graph/telemetry/istio: queries 0, 2 and 3 of
`buildNamespaceTrafficMap`, the `responseTime` appender's p95 and the `securityPolicy` appender's
mTLS queries, each wrapped in `round(..., 0.001)` as `PromQueryAppender` does); `EmbeddedSource`
evaluates the same matchers and grouping over the samples it scraped itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

REQUESTS = "istio_requests_total"
DURATION_BUCKETS = "istio_request_duration_milliseconds_bucket"

# The labels that identify both ends of an edge (Kiali's node labels).
NODE_LABELS: tuple[str, ...] = (
    "source_cluster",
    "source_workload_namespace",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "destination_cluster",
    "destination_service_namespace",
    "destination_service",
    "destination_service_name",
    "destination_workload_namespace",
    "destination_workload",
    "destination_canonical_service",
    "destination_canonical_revision",
)
# Kiali's <G>: node labels plus what edge rates, error shares and breakdowns are computed from.
REQUEST_GROUPING = NODE_LABELS + ("request_protocol", "response_code", "grpc_response_status", "response_flags")
RESPONSE_TIME_GROUPING = ("le", *NODE_LABELS, "request_protocol")
SECURITY_GROUPING: tuple[str, ...] = (
    "source_cluster",
    "source_workload_namespace",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_principal",
    "destination_cluster",
    "destination_service_namespace",
    "destination_service_name",
    "destination_workload_namespace",
    "destination_workload",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_principal",
    "connection_security_policy",
)

Op = Literal["=", "!=", "=~", "!~"]


def _quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class Matcher:
    """One label matcher; regular expressions are anchored at both ends, as in PromQL."""

    label: str
    op: Op
    value: str

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile(self.value)

    def promql(self) -> str:
        return f"{self.label}{self.op}{_quote(self.value)}"

    def matches(self, labels: Mapping[str, str]) -> bool:
        # A missing label has the empty value, as in PromQL.
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self._pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found


def _selector(metric: str, matchers: tuple[Matcher, ...]) -> str:
    return metric + "{" + ",".join(m.promql() for m in matchers) + "}"


@dataclass(frozen=True)
class RateQuery:
    """`round(sum(rate(metric{matchers}[W])) by (grouping) > 0, 0.001)`."""

    name: str
    metric: str
    matchers: tuple[Matcher, ...]
    grouping: tuple[str, ...]

    def promql(self, window_s: int) -> str:
        inner = f"sum(rate({_selector(self.metric, self.matchers)} [{window_s}s])) by ({','.join(self.grouping)}) > 0"
        return f"round({inner},0.001)"


@dataclass(frozen=True)
class QuantileQuery:
    """`round(histogram_quantile(q, sum(rate(bucket{matchers}[W])) by (le,...)) > 0, 0.001)`."""

    name: str
    quantile: float
    metric: str
    matchers: tuple[Matcher, ...]
    grouping: tuple[str, ...] = field(default=RESPONSE_TIME_GROUPING)

    def promql(self, window_s: int) -> str:
        rates = f"sum(rate({_selector(self.metric, self.matchers)}[{window_s}s])) by ({','.join(self.grouping)})"
        return f"round(histogram_quantile({self.quantile:.2f}, {rates}) > 0,0.001)"


def request_queries(namespace: str) -> tuple[RateQuery, ...]:
    """Kiali's queries 0, 2 and 3, in the order they are applied (earlier answers win duplicates).

    0: requests from other namespaces that no workload of `namespace` served (source-reported);
    2: everything the namespace's workloads received (destination-reported);
    3: everything they sent (source-reported).
    """
    ns_host = rf"^.+\.{re.escape(namespace)}\..+$"
    return (
        RateQuery(
            "unserved",
            REQUESTS,
            (
                Matcher("reporter", "=", "source"),
                Matcher("source_workload_namespace", "!=", namespace),
                Matcher("destination_workload_namespace", "=", "unknown"),
                Matcher("destination_workload", "=", "unknown"),
                Matcher("destination_service", "=~", ns_host),
            ),
            REQUEST_GROUPING,
        ),
        RateQuery(
            "incoming",
            REQUESTS,
            (Matcher("reporter", "=", "destination"), Matcher("destination_workload_namespace", "=", namespace)),
            REQUEST_GROUPING,
        ),
        RateQuery(
            "outgoing",
            REQUESTS,
            (Matcher("reporter", "=", "source"), Matcher("source_workload_namespace", "=", namespace)),
            REQUEST_GROUPING,
        ),
    )


def response_time_queries(namespace: str, quantile: float = 0.95) -> tuple[QuantileQuery, ...]:
    """Latency quantiles, destination-reported first: the destination proxy's figure wins on shared edges."""
    return (
        QuantileQuery(
            "response-time-incoming",
            quantile,
            DURATION_BUCKETS,
            (Matcher("reporter", "=", "destination"), Matcher("destination_service_namespace", "=", namespace)),
        ),
        QuantileQuery(
            "response-time-outgoing",
            quantile,
            DURATION_BUCKETS,
            (Matcher("reporter", "=", "source"), Matcher("source_workload_namespace", "=", namespace)),
        ),
    )


def security_queries(namespace: str) -> tuple[RateQuery, ...]:
    """Request rates by connection security policy; only destination proxies report the policy."""
    return (
        RateQuery(
            "security-from-outside",
            REQUESTS,
            (
                Matcher("reporter", "=", "destination"),
                Matcher("source_workload_namespace", "!=", namespace),
                Matcher("destination_service_namespace", "=", namespace),
            ),
            SECURITY_GROUPING,
        ),
        RateQuery(
            "security-inside",
            REQUESTS,
            (Matcher("reporter", "=", "destination"), Matcher("source_workload_namespace", "=", namespace)),
            SECURITY_GROUPING,
        ),
    )
