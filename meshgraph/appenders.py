"""Kiali's appenders: each adds one kind of information to the traffic map after it is built.

- `response_time`: the edges' latency quantile, destination proxy first; none on edges into service
  nodes (a service does no work, and quantiles of the workloads behind it cannot be combined).
- `security_policy`: the share of an edge's requests that used mutual TLS (destination-reported).
- `idle_workloads`, `workloads`: workloads without traffic, readiness, missing sidecars (cluster).
- `istio_badges`: gateways, VirtualService features, circuit breakers, HTTPRoute routing (cluster).
- `health`: edge and node health from response codes, merged with workload readiness.
- `mark_outsiders`, `mark_roots`: Kiali's finalizers (nodes of other namespaces; traffic sources).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from meshgraph import health as h
from meshgraph.cluster import GATEWAY_NAME_LABEL, Snapshot
from meshgraph.model import SERVICE, UNKNOWN, UNKNOWN_NODE, WORKLOAD, Edge, Node, TrafficMap, read_ends
from meshgraph.promql import Sample

MTLS = "mutual_tls"


def _pair_keys(labels: Mapping[str, str], inject_services: bool) -> list[tuple[str, str]] | None:
    """(source key, dest key) of the edges a series describes: one, or two around an injected service."""
    ends = read_ends(labels)
    if ends is None:
        return None
    if ends.injects_service(inject_services):
        return [(ends.source_key, ends.service_key), (ends.service_key, ends.dest_key)]
    return [(ends.source_key, ends.dest_key)]


def response_time(tmap: TrafficMap, answers: Sequence[Sequence[Sample]], inject_services: bool) -> None:
    """Set `responseTime` (ms) on edges; the first answer for an edge wins (destination-reported first)."""
    times: dict[tuple[str, str, str], float] = {}
    for samples in answers:
        for sample in samples:
            pairs = _pair_keys(sample.labels, inject_services)
            if pairs is None:
                continue
            source, dest = pairs[-1]  # with a service node in between, only the edge into the workload
            times.setdefault((source, dest, sample.labels.get("request_protocol", "http")), sample.value)
    for edge in tmap.all_edges():
        value = times.get((edge.source.key, edge.dest.key, edge.protocol))
        if value is not None:
            edge.meta["responseTime"] = value


def security_policy(tmap: TrafficMap, answers: Sequence[Sequence[Sample]], inject_services: bool) -> None:
    """Set `isMTLS` (percent of requests over mutual TLS, only when above 0) and the principals."""
    policies: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    principals: dict[tuple[str, str], tuple[str, str]] = {}
    for samples in answers:
        for sample in samples:
            labels = sample.labels
            pairs = _pair_keys(labels, inject_services)
            if pairs is None:
                continue
            policy = labels.get("connection_security_policy", UNKNOWN)
            for pair in pairs:
                policies[pair][policy] += sample.value
                principals[pair] = (labels.get("source_principal", ""), labels.get("destination_principal", ""))
    for edge in tmap.all_edges():
        pair = (edge.source.key, edge.dest.key)
        rates = policies.get(pair)
        if rates:
            share = rates.get(MTLS, 0.0) / sum(rates.values()) * 100
            if share > 0:
                edge.meta["isMTLS"] = round(share, 1)
        if pair in principals:
            edge.meta["sourcePrincipal"], edge.meta["destPrincipal"] = principals[pair]


def _cluster_of(tmap: TrafficMap, namespace: str, default: str) -> str:
    """The cluster name the namespace's telemetry uses, so idle nodes get the same ids as busy ones."""
    for node in tmap.values():
        if node.node_type == WORKLOAD and node.namespace == namespace:
            return node.cluster
    return default


def idle_workloads(tmap: TrafficMap, snapshot: Snapshot, default_cluster: str) -> None:
    """Add the namespace's workloads that had no traffic in the window, flagged `isIdle`."""
    cluster = _cluster_of(tmap, snapshot.namespace, default_cluster)
    destinations = {edge.dest.key for edge in tmap.all_edges()}
    for workload in snapshot.workloads.values():
        labels = workload.labels
        node = tmap.node(
            cluster,
            snapshot.namespace,
            "",
            snapshot.namespace,
            workload.name,
            labels.get("app", UNKNOWN),
            labels.get("version", UNKNOWN),
        )
        if not node.edges and node.key not in destinations:
            node.meta["isIdle"] = True


def workloads(tmap: TrafficMap, snapshot: Snapshot) -> None:
    """Readiness (`workloadStatus`), missing sidecars (`isOutOfMesh`), workloads gone (`isDead`), app labels."""
    for node in tmap.values():
        if node.namespace != snapshot.namespace:
            continue
        if node.node_type == SERVICE:
            app = snapshot.services.get(node.service, {}).get("app")
            if app:
                node.app = app
            continue
        if node.node_type != WORKLOAD:
            continue
        workload = snapshot.workloads.get(node.workload)
        if workload is None or workload.current == 0:
            node.meta["isDead"] = True
        if workload is None:
            continue
        node.app = node.app or workload.labels.get("app", "")
        node.version = node.version or workload.labels.get("version", "")
        node.meta["workloadStatus"] = {
            "kind": workload.kind,
            "desiredReplicas": workload.desired,
            "currentReplicas": workload.current,
            "availableReplicas": workload.available,
        }
        node.meta["workloadHealth"] = h.workload_status(workload.desired, workload.available, workload.pending)
        if workload.sidecars < workload.current:
            node.meta["isOutOfMesh"] = True


def _service_hosts(name: str, namespace: str) -> set[str]:
    return {name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"}


def _vs_features(spec: Mapping) -> dict[str, bool]:
    """Kiali's VirtualService badges: request routing, shifting, faults, timeouts, mirroring."""
    http = spec.get("http") or []
    routed = any(r.get("route") for key in ("http", "tcp", "tls") for r in spec.get(key) or [])
    return {
        "hasRequestRouting": routed,
        "hasTrafficShifting": any(len(r.get("route") or []) > 1 for r in http),
        "hasTCPTrafficShifting": any(len(r.get("route") or []) > 1 for r in spec.get("tcp") or []),
        "hasFaultInjection": any(r.get("fault") for r in http),
        "hasRequestTimeout": any(r.get("timeout") for r in http),
        "hasMirroring": any(r.get("mirror") or r.get("mirrors") for r in http),
    }


def _has_circuit_breaker(spec: Mapping) -> bool:
    policies = [spec.get("trafficPolicy") or {}] + [s.get("trafficPolicy") or {} for s in spec.get("subsets") or []]
    policies += [p for policy in list(policies) for p in policy.get("portLevelSettings") or []]
    return any(p.get("connectionPool") or p.get("outlierDetection") for p in policies)


def _route_features(rules: Sequence[Mapping]) -> dict[str, bool]:
    """An HTTPRoute routes requests when a rule matches on more than the path prefix "/" or splits traffic."""

    def selective(match: Mapping) -> bool:
        path = match.get("path") or {}
        return bool(match.get("headers") or match.get("queryParams") or match.get("method")) or (
            bool(path) and (path.get("type", "PathPrefix"), path.get("value", "/")) != ("PathPrefix", "/")
        )

    return {
        "hasRequestRouting": any(selective(m) for r in rules for m in r.get("matches") or []),
        "hasTrafficShifting": any(len(r.get("backendRefs") or []) > 1 for r in rules),
    }


def _flag(node: Node, features: Mapping[str, bool]) -> None:
    for name, on in features.items():
        if on:
            node.meta[name] = True


def istio_badges(tmap: TrafficMap, snapshot: Snapshot) -> None:
    """Badges from the namespace's configuration, on the nodes they concern (Kiali's `istio` appender)."""
    ns = snapshot.namespace
    k8s_gateways = {g["metadata"]["name"]: g for g in snapshot.k8s_gateways}
    for node in tmap.values():
        if node.namespace != ns:
            continue
        if node.node_type == WORKLOAD:
            workload = snapshot.workloads.get(node.workload)
            if workload is not None:
                _badge_gateway(node, workload.labels, k8s_gateways, snapshot.istio_gateways)
        elif node.node_type == SERVICE:
            hosts = _service_hosts(node.service, ns)
            for vs in snapshot.virtual_services:
                spec = vs.get("spec") or {}
                matched = [host for host in spec.get("hosts") or [] if host in hosts]
                if matched:
                    badge = node.meta.setdefault("hasVS", {"hostnames": []})
                    badge["hostnames"] = sorted(set(badge["hostnames"]) | set(spec.get("hosts") or []))
                    _flag(node, _vs_features(spec))
            for dr in snapshot.destination_rules:
                spec = dr.get("spec") or {}
                if spec.get("host") in hosts and _has_circuit_breaker(spec):
                    node.meta["hasCB"] = True
    _badge_http_routes(tmap, snapshot)


def _badge_gateway(node: Node, labels: Mapping[str, str], k8s_gateways: Mapping, istio_gateways: Sequence) -> None:
    name = labels.get(GATEWAY_NAME_LABEL)
    if name is not None:
        listeners = ((k8s_gateways.get(name) or {}).get("spec") or {}).get("listeners") or []
        hostnames = sorted({listener["hostname"] for listener in listeners if listener.get("hostname")})
        node.meta["isGateway"] = {"gatewayAPIInfo": {"hostnames": hostnames}}
        node.meta["isK8sGatewayAPI"] = True
        return
    for gateway in istio_gateways:
        selector = (gateway.get("spec") or {}).get("selector") or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            servers = (gateway.get("spec") or {}).get("servers") or []
            hostnames = sorted({host for server in servers for host in server.get("hosts") or []})
            info = node.meta.setdefault("isGateway", {}).setdefault("ingressInfo", {"hostnames": []})
            info["hostnames"] = sorted(set(info["hostnames"]) | set(hostnames))
    if "isGateway" not in node.meta and labels.get("istio") == "ingressgateway":
        node.meta["isGateway"] = {"ingressInfo": {"hostnames": []}}


def _badge_http_routes(tmap: TrafficMap, snapshot: Snapshot) -> None:
    """HTTPRoutes route at their parent: a Gateway's proxy, or (mesh routing) a Service."""
    by_gateway: dict[str, list[Node]] = defaultdict(list)
    services: dict[str, list[Node]] = defaultdict(list)
    for node in tmap.values():
        if node.namespace != snapshot.namespace:
            continue
        if node.node_type == WORKLOAD and node.workload in snapshot.workloads:
            gateway = snapshot.workloads[node.workload].labels.get(GATEWAY_NAME_LABEL)
            if gateway:
                by_gateway[gateway].append(node)
        elif node.node_type == SERVICE:
            services[node.service].append(node)
    for route in snapshot.http_routes:
        features = _route_features((route.get("spec") or {}).get("rules") or [])
        for parent in (route.get("spec") or {}).get("parentRefs") or []:
            targets = services if parent.get("kind") == "Service" else by_gateway
            for node in targets.get(parent.get("name", ""), []):
                _flag(node, features)


def _codes(edges: Iterable[Edge]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for edge in edges:
        into = out[edge.protocol]
        for code, rate in edge.codes.items():
            into[code] += rate
    return out


def health(tmap: TrafficMap) -> None:
    """`healthStatus` of edges (their own codes) and nodes (inbound and outbound codes, and readiness)."""
    incoming: dict[str, list] = defaultdict(list)
    for edge in tmap.all_edges():
        edge.meta["healthStatus"] = h.request_status({edge.protocol: edge.codes})
        incoming[edge.dest.key].append(edge)
    for node in tmap.values():
        if node.node_type == UNKNOWN_NODE:
            node.meta["healthStatus"] = h.NA
            continue
        status = h.request_status(_codes(incoming[node.key]))
        if node.node_type == WORKLOAD:
            status = h.worst(status, h.request_status(_codes(node.edges.values())))
            status = h.worst(status, node.meta.get("workloadHealth", h.NA))
        node.meta["healthStatus"] = status


def mark_outsiders(tmap: TrafficMap, namespace: str) -> None:
    for node in tmap.values():
        if node.node_type != UNKNOWN_NODE and node.namespace != namespace:
            node.meta["isOutside"] = True


def mark_roots(tmap: TrafficMap) -> None:
    """Nodes that only send are where traffic enters the graph (Kiali's trafficGenerator finalizer)."""
    destinations = {edge.dest.key for edge in tmap.all_edges()}
    for node in tmap.values():
        if node.edges and node.key not in destinations:
            node.meta["isRoot"] = True
