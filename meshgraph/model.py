"""The traffic map: Kiali's workload graph of nodes and per-protocol edges, before it becomes JSON.

Node identity follows Kiali's `graph.Id` for workload graphs: a workload node per (cluster, namespace,
workload), a service node per (cluster, namespace, service), one `unknown` source node per cluster for
clients outside the mesh, and one `unknown` service per namespace for requests nobody could route.
The browser receives a hash of the internal id, stable across refreshes, so it keeps node positions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from meshgraph.queries import NODE_LABELS

UNKNOWN = "unknown"
WORKLOAD = "workload"
SERVICE = "service"
UNKNOWN_NODE = "unknown"
PASSTHROUGH = "PassthroughCluster"
BLACKHOLE = "BlackHoleCluster"


def is_ok(value: str) -> bool:
    """Kiali's IsOK: a label value that names something."""
    return value != "" and value != UNKNOWN


def node_key(cluster: str, service_ns: str, service: str, workload_ns: str, workload: str, app: str) -> tuple[str, str]:
    """(internal id, node type) of the workload-graph node these labels describe."""
    namespace = workload_ns if is_ok(workload_ns) else service_ns
    if namespace == UNKNOWN and workload == UNKNOWN and app == UNKNOWN and service == "":
        return f"{cluster}_unknown_source", UNKNOWN_NODE
    if workload == UNKNOWN and app == UNKNOWN and service == UNKNOWN:
        return f"svc_{cluster}_{namespace}_unknown", SERVICE
    if not is_ok(workload):
        name = service if is_ok(service) else UNKNOWN
        return f"svc_{cluster}_{namespace}_{name}", SERVICE
    return f"wl_{cluster}_{namespace}_{workload}", WORKLOAD


def public_id(key: str) -> str:
    """The id the browser sees: short, stable, and free of characters selectors dislike."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(eq=False, slots=True)
class Node:
    key: str
    node_type: str
    cluster: str
    namespace: str
    workload: str = ""
    app: str = ""
    version: str = ""
    service: str = ""
    edges: dict[tuple[str, str], Edge] = field(default_factory=dict)  # (dest key, protocol) -> edge
    # protocol -> rate name (httpIn, httpOut, httpIn5xx, ...) -> requests per second
    traffic: dict[str, dict[str, float]] = field(default_factory=dict)
    dest_services: set[tuple[str, str, str]] = field(default_factory=set)  # (cluster, namespace, name)
    meta: dict[str, Any] = field(default_factory=dict)  # flags and appender results, JSON-ready
    public_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.public_id = public_id(self.key)

    @property
    def label(self) -> str:
        if self.node_type == WORKLOAD:
            return self.workload
        if self.node_type == SERVICE:
            return self.service
        return UNKNOWN


@dataclass(eq=False, slots=True)
class Edge:
    source: Node
    dest: Node
    protocol: str
    rates: dict[str, float] = field(default_factory=dict)  # http, http5xx, httpNoResponse, grpcErr, ...
    # code -> {"flags": {flag: rate}, "hosts": {host: rate}}
    responses: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    codes: dict[str, float] = field(default_factory=dict)  # response code -> rate, for health
    counted: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (code, flags, host) -> rate
    seen: set[tuple] = field(default_factory=set)  # series already counted (Kiali's edgeTSHash)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.rates.get(self.protocol, 0.0)

    def count(self, code: str, flags: str, host: str, value: float) -> None:
        """Add `value` req/s of one response code, flags and host; `TrafficMap.tally` sums them up."""
        key = (code, flags, host)
        self.counted[key] = self.counted.get(key, 0.0) + value

    def tally(self) -> None:
        """Rates by class, the per-code breakdowns, and the two nodes' traffic (Kiali's AddToMetadata)."""
        protocol = self.protocol
        rates, codes, responses = self.rates, self.codes, self.responses
        out = self.source.traffic.setdefault(protocol, {})
        into = self.dest.traffic.setdefault(protocol, {})
        for (code, flags, host), value in self.counted.items():
            rates[protocol] = rates.get(protocol, 0.0) + value
            out[protocol + "Out"] = out.get(protocol + "Out", 0.0) + value
            into[protocol + "In"] = into.get(protocol + "In", 0.0) + value
            kind = _response_class(protocol, code)
            if kind:
                rates[protocol + kind] = rates.get(protocol + kind, 0.0) + value
                into[protocol + "In" + kind] = into.get(protocol + "In" + kind, 0.0) + value
            codes[code] = codes.get(code, 0.0) + value
            response = responses.get(code)
            if response is None:
                response = responses[code] = {"flags": {}, "hosts": {}}
            response["flags"][flags] = response["flags"].get(flags, 0.0) + value
            response["hosts"][host] = response["hosts"].get(host, 0.0) + value


class TrafficMap(dict[str, Node]):
    """Nodes by internal id."""

    def node(
        self,
        cluster: str,
        service_ns: str,
        service: str,
        workload_ns: str,
        workload: str,
        app: str,
        version: str,
        key: tuple[str, str] | None = None,
    ) -> Node:
        """The node for these labels, created on first use (Kiali's addNode); `key` if already known."""
        node_id, node_type = key or node_key(cluster, service_ns, service, workload_ns, workload, app)
        node = self.get(node_id)
        if node is None:
            namespace = workload_ns if is_ok(workload_ns) else service_ns
            if node_type == WORKLOAD:
                node = Node(node_id, node_type, cluster, namespace, workload, _known(app), _known(version))
            elif node_type == SERVICE:
                node = Node(node_id, node_type, cluster, namespace, service=service if is_ok(service) else UNKNOWN)
                if service in (PASSTHROUGH, BLACKHOLE):
                    node.meta["isEgressCluster"] = True
            else:
                node = Node(node_id, node_type, cluster, UNKNOWN)
            self[node_id] = node
        return node

    def source(self, ends: Ends) -> Node:
        return self.node(*ends.source_labels, key=(ends.source_key, ends.source_type))

    def dest(self, ends: Ends) -> Node:
        return self.node(*ends.dest_labels, key=(ends.dest_key, ends.dest_type))

    def service(self, ends: Ends) -> Node:
        return self.node(*ends.service_labels, key=(ends.service_key, SERVICE))

    def edge(self, source: Node, dest: Node, protocol: str) -> Edge:
        edge = source.edges.get((dest.key, protocol))
        if edge is None:
            edge = source.edges[(dest.key, protocol)] = Edge(source, dest, protocol)
        return edge

    def all_edges(self) -> list[Edge]:
        return [edge for node in self.values() for edge in node.edges.values()]

    def tally(self) -> None:
        """Turn the counted requests into rates and breakdowns, once all queries are in."""
        for edge in self.all_edges():
            edge.tally()

    def release(self) -> None:
        """Break the node <-> edge reference cycles, so reference counting frees the map at once."""
        for node in self.values():
            node.edges.clear()
        self.clear()


def _response_class(protocol: str, code: str) -> str:
    """The rate bucket a response code adds to besides the total: 3xx/4xx/5xx/NoResponse, or Err for gRPC."""
    if code == "-":
        return "NoResponse"
    if protocol == "grpc":
        return "Err" if code != "0" else ""
    if code[:1] in ("3", "4", "5"):
        return code[0] + "xx"
    return ""


def _known(value: str) -> str:
    return value if is_ok(value) else ""


_BAD_SERVICE = re.compile(r"^\d+\.\d+\.\d+\.\d+(:\d+)?$")  # an IP:port left by pod churn


@dataclass(frozen=True, slots=True)
class Ends:
    """Both ends of a series, read from its Istio labels and normalised as Kiali does, with node ids."""

    source_labels: tuple[str, ...]  # (cluster, service ns, service, workload ns, workload, app, version)
    dest_labels: tuple[str, ...]
    dst_svc: str  # the host, e.g. kvstore.ns.svc.cluster.local
    source_key: str
    source_type: str
    dest_key: str
    dest_type: str
    service_key: str  # of the service node that can go between them
    dest_service: tuple[str, str, str]  # (cluster, namespace, name) of the destination service
    injectable: bool  # a service node may go between them (Kiali's injectServiceNodes rules)

    @property
    def service_labels(self) -> tuple[str, ...]:
        cluster, namespace, name = self.dest_service
        return (cluster, namespace, name, "", "", "", "")

    def injects_service(self, enabled: bool) -> bool:
        """Whether a service node goes between source and destination."""
        return enabled and self.injectable


def read_ends(labels: Mapping[str, str]) -> Ends | None:
    """The ends of a series, or None for telemetry Kiali discards (missing labels, known Istio glitches)."""
    return _ends(tuple(map(labels.get, NODE_LABELS)))


@lru_cache(maxsize=1 << 16)  # the same ends recur in every query and every refresh
def _ends(values: tuple[str | None, ...]) -> Ends | None:
    (src_cluster, src_ns, src_wl, src_app, src_ver, dst_cluster, dst_svc_ns, dst_svc, dst_svc_name, dst_wl_ns,
     dst_wl, dst_app, dst_ver) = values  # fmt: skip
    if None in (src_ns, src_wl, src_app, dst_wl_ns, dst_wl, dst_svc_name):
        return None
    if is_ok(src_ns) and not is_ok(src_wl) and not is_ok(src_app):
        return None
    if is_ok(src_ns) and src_cluster is not None and not is_ok(src_cluster):
        return None
    src_cluster = src_cluster or UNKNOWN
    dst_svc = dst_svc or UNKNOWN
    if not is_ok(dst_svc_ns or "") and dst_svc.count(".") >= 2 and ".svc." in dst_svc + ".":
        # A request no workload served reports no service namespace in some proxies (the sandbox's
        # among them); the cluster-local host names it.
        dst_svc_ns = dst_svc.split(".")[1]
    dst_svc_ns = dst_svc_ns or UNKNOWN
    cluster_reported = dst_cluster is not None
    dst_cluster = dst_cluster or UNKNOWN
    if not is_ok(dst_cluster) and is_ok(src_cluster) and is_ok(dst_svc_ns):
        dst_cluster = src_cluster  # istio/istio#29373: the source's cluster is the best guess
    if not is_ok(dst_wl) and is_ok(dst_svc) and dst_svc == dst_svc_name and _BAD_SERVICE.match(dst_svc_name):
        return None
    if is_ok(dst_svc_ns) and cluster_reported and not is_ok(dst_cluster):
        return None
    source = (src_cluster, src_ns, "", src_ns, src_wl, src_app, src_ver or UNKNOWN)
    dest = (dst_cluster, dst_svc_ns, dst_svc_name, dst_wl_ns, dst_wl, dst_app or UNKNOWN, dst_ver or UNKNOWN)
    source_key, source_type = node_key(*source[:6])
    dest_key, dest_type = node_key(*dest[:6])
    service_key = node_key(dst_cluster, dst_svc_ns, dst_svc_name, "", "", "")[0]
    # Never for an unnamed service, Istio's passthrough, or a destination that is a service node already.
    injectable = is_ok(dst_svc_name) and dst_svc_name != PASSTHROUGH and dest_type != SERVICE
    return Ends(
        source,
        dest,
        dst_svc,
        source_key,
        source_type,
        dest_key,
        dest_type,
        service_key,
        (dst_cluster, dst_svc_ns, dst_svc_name),
        injectable,
    )
