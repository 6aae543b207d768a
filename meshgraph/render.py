"""The traffic map as Cytoscape-shaped JSON, in the layout of Kiali's graph API.

Differences from Kiali, on purpose: rates and percentages are numbers, not strings; every node
carries its `badges` (GW, MS, VS, FI, RR, TS, RT, MI, CB, RO) ready to draw; ids are shortened
hashes. Nodes and edges are sorted by their internal ids, so equal graphs list them in equal order.
"""

from __future__ import annotations

from typing import Any

from meshgraph.model import Edge, Node, TrafficMap, public_id

# Node flags set by the appenders that go to the browser unchanged.
NODE_FLAGS = (
    "isRoot",
    "isGateway",
    "isK8sGatewayAPI",
    "isIdle",
    "isDead",
    "isOutOfMesh",
    "isOutside",
    "isInjected",
    "isEgressCluster",
    "hasVS",
    "hasFaultInjection",
    "hasRequestRouting",
    "hasTrafficShifting",
    "hasTCPTrafficShifting",
    "hasRequestTimeout",
    "hasMirroring",
    "hasCB",
    "workloadStatus",
)
BADGES = (
    ("GW", "isGateway"),
    ("MS", "isOutOfMesh"),
    ("VS", "hasVS"),
    ("FI", "hasFaultInjection"),
    ("RR", "hasRequestRouting"),
    ("TS", "hasTrafficShifting"),
    ("RT", "hasRequestTimeout"),
    ("MI", "hasMirroring"),
    ("CB", "hasCB"),
    ("RO", "isRoot"),
)


_ERROR_SUFFIXES = ("NoResponse", "4xx", "5xx", "Err")  # the rate classes that count as errors


def _rate(value: float) -> float:
    return round(value, 3)


def _percent(part: float, whole: float) -> float:
    return round(part / whole * 100, 1) if whole > 0 else 0.0


def node_data(node: Node) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": node.public_id,
        "nodeType": node.node_type,
        "label": node.label,
        "cluster": node.cluster,
        "namespace": node.namespace,
        "workload": node.workload,
        "app": node.app,
        "version": node.version,
        "service": node.service,
        "destServices": [{"cluster": c, "namespace": ns, "name": name} for c, ns, name in sorted(node.dest_services)],
        "traffic": [
            {"protocol": protocol, "rates": {k: _rate(v) for k, v in rates.items() if v > 0}}
            for protocol, rates in node.traffic.items()
        ],
        "healthStatus": node.meta.get("healthStatus", "NA"),
        "badges": [badge for badge, flag in BADGES if node.meta.get(flag)],
    }
    for flag in NODE_FLAGS:
        if node.meta.get(flag):
            data[flag] = node.meta[flag]
    return data


def edge_data(edge: Edge) -> dict[str, Any]:
    protocol, total = edge.protocol, edge.total
    rates: dict[str, float] = {k: round(v, 3) for k, v in edge.rates.items() if v > 0}
    errors = sum(v for k, v in edge.rates.items() if k.endswith(_ERROR_SUFFIXES))
    rates[protocol + "PercentErr"] = _percent(errors, total)
    sent = edge.source.traffic.get(protocol, {}).get(protocol + "Out", 0.0)
    rates[protocol + "PercentReq"] = _percent(total, sent)
    scale = 100 / total if total > 0 else 0.0
    responses = {
        code: {part: {name: round(v * scale, 1) for name, v in values.items()} for part, values in r.items()}
        for code, r in edge.responses.items()
    }
    data: dict[str, Any] = {
        "id": public_id(f"{edge.source.key}.{edge.dest.key}.{protocol}"),
        "source": edge.source.public_id,
        "target": edge.dest.public_id,
        "traffic": {"protocol": protocol, "rates": rates, "responses": responses},
        "healthStatus": edge.meta.get("healthStatus", "NA"),
    }
    for key in ("responseTime", "isMTLS", "sourcePrincipal", "destPrincipal"):
        if key in edge.meta:
            data[key] = edge.meta[key]
    return data


def graph_json(
    tmap: TrafficMap,
    *,
    namespace: str,
    at: float,
    window_s: int,
    source: str,
    source_location: str,
    status: tuple[bool, str],
) -> dict[str, Any]:
    nodes = [tmap[key] for key in sorted(tmap)]
    edges = sorted(tmap.all_edges(), key=lambda e: (e.source.key, e.dest.key, e.protocol))
    return {
        "timestamp": int(at),
        "duration": window_s,
        "graphType": "workload",
        "namespace": namespace,
        "source": source,
        "sourceLocation": source_location,
        "status": {"ok": status[0], "message": status[1]},
        "elements": {
            "nodes": [{"data": node_data(n)} for n in nodes],
            "edges": [{"data": edge_data(e)} for e in edges],
        },
    }
