"""Kiali's pipeline for one namespace: queries -> traffic map -> appenders -> JSON.

`collect` asks a metrics source Kiali's queries; `traffic_map` turns the request rates into nodes and
edges; `build_graph` runs the appenders (response time, mTLS, workloads, badges, health, roots) and
renders the JSON; `graph_for` does all of it and turns every failure into the graph's status line.
Nothing here imports Django.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from meshgraph import appenders
from meshgraph.cluster import Reader, Snapshot
from meshgraph.memory import paused_gc
from meshgraph.model import UNKNOWN, TrafficMap, read_ends
from meshgraph.promql import Sample
from meshgraph.queries import REQUESTS, request_queries, response_time_queries, security_queries
from meshgraph.render import graph_json
from meshgraph.sources import MetricsSource, SourceError

DEFAULT_CLUSTER = "Kubernetes"  # Istio's default CLUSTER_ID


@dataclass(frozen=True)
class GraphOptions:
    window_s: int = 10  # the rate window (Kiali's "duration")
    quantile: float = 0.95  # of the edges' response time
    inject_services: bool = True  # service nodes between callers and workloads (Kiali's UI default)
    idle_nodes: bool = True  # workloads without traffic are shown, greyed (Kiali's "idle nodes")


@dataclass
class Telemetry:
    """The answers to one graph's queries, each list in Kiali's order (earlier answers win duplicates)."""

    requests: list[list[Sample]] = field(default_factory=list)
    response_times: list[list[Sample]] = field(default_factory=list)
    security: list[list[Sample]] = field(default_factory=list)


async def collect(source: MetricsSource, namespace: str, options: GraphOptions, at: float) -> Telemetry:
    """Ask all of the graph's queries at once; raises SourceError if any cannot be answered."""
    w = options.window_s
    requests = request_queries(namespace)
    times = response_time_queries(namespace, options.quantile)
    security = security_queries(namespace)
    answers = await asyncio.gather(
        *(source.rates(q, w, at) for q in requests),
        *(source.quantiles(q, w, at) for q in times),
        *(source.rates(q, w, at) for q in security),
    )
    r, t = len(requests), len(times)
    return Telemetry(list(answers[:r]), list(answers[r : r + t]), list(answers[r + t :]))


def _response_code(protocol: str, code: str, grpc_status: str | None) -> str:
    """Kiali's HandleResponseCode: "-" for no response, else the gRPC status for healthy gRPC transport."""
    if code == "0":
        return "-"
    if protocol != "grpc" or code.startswith(("4", "5")) or not grpc_status:
        return code
    return grpc_status


def add_requests(tmap: TrafficMap, samples: Sequence[Sample], inject_services: bool, metric: str = REQUESTS) -> None:
    """Add one query's request rates to the map (Kiali's populateTrafficMap and addTraffic).

    A series counts once per edge: if an earlier query already brought the same source, destination,
    code, flags and host (the destination proxy's view of the same requests), it is skipped.
    """
    for sample in samples:
        value = sample.value
        if value <= 0:
            continue
        labels = sample.labels
        ends = read_ends(labels)
        if ends is None or "response_code" not in labels:
            continue
        protocol = labels.get("request_protocol", "http")
        code = _response_code(protocol, labels["response_code"], labels.get("grpc_response_status"))
        flags = labels.get("response_flags", "-")
        host = ends.dst_svc
        # Kiali hashes both ends' labels; their node ids identify them as well, and hash faster.
        seen = (metric, ends.source_key, ends.dest_key, code, flags, host)
        source = tmap.get(ends.source_key) or tmap.source(ends)
        dest = tmap.get(ends.dest_key) or tmap.dest(ends)
        if ends.injects_service(inject_services):
            service = tmap.get(ends.service_key) or tmap.service(ends)
            service.meta["isInjected"] = True
            first = tmap.edge(source, service, protocol)
            if seen in first.seen:
                continue
            first.seen.add(seen)
            first.count(code, flags, host, value)
            tmap.edge(service, dest, protocol).count(code, flags, host, value)
            service.dest_services.add(ends.dest_service)
            dest.dest_services.add(ends.dest_service)
        else:
            edge = tmap.edge(source, dest, protocol)
            if seen in edge.seen:
                continue
            edge.seen.add(seen)
            edge.count(code, flags, host, value)
            if ends.dest_labels[2] != UNKNOWN:
                dest.dest_services.add(ends.dest_service)


def traffic_map(telemetry: Telemetry, options: GraphOptions) -> TrafficMap:
    tmap = TrafficMap()
    for samples in telemetry.requests:
        add_requests(tmap, samples, options.inject_services)
    tmap.tally()
    return tmap


def build_graph(
    namespace: str,
    telemetry: Telemetry,
    snapshot: Snapshot | None,
    options: GraphOptions,
    *,
    source: str,
    source_location: str,
    at: float,
    status: tuple[bool, str] = (True, ""),
) -> dict:
    """The graph's JSON from answers already fetched (also what the benchmark times).

    It runs with the cyclic garbage collector paused (meshgraph.memory): nothing here awaits, and
    the traffic map's cycles are broken before it returns.
    """
    with paused_gc():
        tmap = traffic_map(telemetry, options)
        try:
            appenders.response_time(tmap, telemetry.response_times, options.inject_services)
            appenders.security_policy(tmap, telemetry.security, options.inject_services)
            if snapshot is not None and not snapshot.error:
                if options.idle_nodes:
                    appenders.idle_workloads(tmap, snapshot, DEFAULT_CLUSTER)
                appenders.workloads(tmap, snapshot)
                appenders.istio_badges(tmap, snapshot)
            appenders.health(tmap)
            appenders.mark_outsiders(tmap, namespace)
            appenders.mark_roots(tmap)
            return graph_json(
                tmap,
                namespace=namespace,
                at=at,
                window_s=options.window_s,
                source=source,
                source_location=source_location,
                status=status,
            )
        finally:
            tmap.release()


async def graph_for(
    namespace: str, source: MetricsSource, reader: Reader | None, options: GraphOptions, at: float | None = None
) -> dict:
    """The graph of `namespace` at `at` (default: the latest the source can tell); problems become its status."""
    at = source.instant() if at is None else at
    problems = []
    cluster = asyncio.ensure_future(reader.snapshot()) if reader is not None else None
    try:
        telemetry = await collect(source, namespace, options, at)
    except SourceError as exc:
        telemetry = Telemetry()
        problems.append(str(exc))
    snapshot = await cluster if cluster is not None else None
    if snapshot is not None and snapshot.error:
        problems.append(f"Workload health and badges are missing: {snapshot.error}")
    message = "; ".join(problems)
    if not problems and not any(telemetry.requests):
        message = await source.explain_empty(namespace, options.window_s)
    return build_graph(
        namespace,
        telemetry,
        snapshot,
        options,
        source=source.kind,
        source_location=source.location,
        at=at,
        status=(not problems, message),
    )
