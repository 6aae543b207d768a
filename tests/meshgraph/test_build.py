"""Kiali's graph from recorded Prometheus answers: nodes, de-duplication, health, badges, the JSON."""

from __future__ import annotations

import pytest

from meshgraph import health
from meshgraph.build import GraphOptions, Telemetry, build_graph
from meshgraph.cluster import Pod, Snapshot, Workload
from meshgraph.model import public_id
from meshgraph.promql import Sample
from tests.meshgraph.lab import GATEWAY, KVSTORE, KVSTORE_SVC, SPLITDIM, SPLITDIM_SVC, UNKNOWN, index, rate

NS = "lab"
CLUSTER = "Kubernetes"


def peer(side: str, workload: str, namespace: str = NS) -> dict[str, str]:
    """The labels Istio gives one end of a request ("unknown" for clients outside the mesh)."""
    known = workload != "unknown"
    return {
        f"{side}_cluster": CLUSTER if known else "unknown",
        f"{side}_workload": workload,
        f"{side}_workload_namespace": namespace if known else "unknown",
        f"{side}_canonical_service": workload,
        f"{side}_canonical_revision": "latest",
    }


def requests(
    source: str, dest: str, service: str, value: float, code: str = "200", flags: str = "-", **extra
) -> Sample:
    labels = {
        **peer("source", source),
        **peer("destination", dest),
        "destination_service": f"{service}.{NS}.svc.cluster.local",
        "destination_service_name": service,
        "destination_service_namespace": NS if dest != "unknown" else "unknown",
        "request_protocol": "http",
        "response_code": code,
        "response_flags": flags,
        **extra,
    }
    return Sample(labels, value)


def lab_telemetry(fault_rate: float = 2.0) -> Telemetry:
    """The lab with the fault step applied: dest- and source-reported views of the same requests."""
    served = 24.5 - fault_rate
    incoming = [
        requests("splitdim-istio", "splitdim", "splitdim", 20.0),
        requests("unknown", "splitdim", "splitdim", 4.5),
        requests("splitdim", "kvstore", "kvstore", served),
    ]
    outgoing = [
        requests("splitdim-istio", "splitdim", "splitdim", 20.0),  # the same requests, from the other proxy
        requests("splitdim", "kvstore", "kvstore", served),
        # Aborted by the fault filter in splitdim's proxy: no workload served them.
        requests("splitdim", "unknown", "kvstore", fault_rate, code="500", flags="FI"),
    ]
    rt = [
        Sample(
            {k: v for k, v in requests("splitdim", "kvstore", "kvstore", 0).labels.items() if "response" not in k}, 4.8
        ),
        Sample(
            {k: v for k, v in requests("splitdim-istio", "splitdim", "splitdim", 0).labels.items() if "resp" not in k},
            9,
        ),
    ]
    security = [
        Sample(
            {**requests("splitdim", "kvstore", "kvstore", 0).labels, "connection_security_policy": "mutual_tls"}, served
        ),
        Sample({**requests("unknown", "splitdim", "splitdim", 0).labels, "connection_security_policy": "none"}, 4.5),
        Sample(
            {
                **requests("splitdim-istio", "splitdim", "splitdim", 0).labels,
                "connection_security_policy": "mutual_tls",
            },
            20,
        ),
    ]
    return Telemetry([[], incoming, outgoing], [rt, []], [security[1:2], security[0:1] + security[2:]])


def lab_snapshot() -> Snapshot:
    snap = Snapshot(NS)
    snap.workloads = {
        "splitdim": Workload("splitdim", "Deployment", {"app": "splitdim"}, 1, 1, 1, 0, 1),
        "kvstore": Workload("kvstore", "StatefulSet", {"app": "kvstore"}, 1, 1, 1, 0, 1),
        "splitdim-istio": Workload(
            "splitdim-istio", "Deployment", {"gateway.networking.k8s.io/gateway-name": "splitdim"}, 1, 1, 1, 0, 1
        ),
        "splitdim-2": Workload("splitdim-2", "Deployment", {"app": "splitdim-2"}, 2, 2, 1, 0, 2),  # idle, 1 of 2 up
        "legacy": Workload("legacy", "Deployment", {"app": "legacy"}, 1, 1, 0, 0, 0),  # no sidecar, not ready
    }
    snap.pods = [Pod("splitdim-abc", "splitdim", "127.1.0.2", True, True)]
    snap.services = {"kvstore": {"app": "kvstore"}, "splitdim": {"app": "splitdim"}}
    snap.virtual_services = [
        {
            "metadata": {"name": "kvstore-500"},
            "spec": {
                "hosts": ["kvstore"],
                "http": [
                    {
                        "match": [{"uri": {"exact": "/api/list"}}],
                        "fault": {"abort": {"httpStatus": 500}},
                        "route": [{"destination": {"host": "kvstore"}}],
                    },  # fmt: skip
                    {"route": [{"destination": {"host": "kvstore"}}]},
                ],
            },
        }
    ]
    snap.destination_rules = [
        {
            "spec": {
                "host": "splitdim.lab.svc.cluster.local",
                "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 1}},
            }
        }
    ]
    snap.k8s_gateways = [{"metadata": {"name": "splitdim"}, "spec": {"listeners": [{"hostname": "shop.example"}]}}]
    snap.http_routes = [
        {
            "spec": {
                "parentRefs": [{"name": "splitdim"}],
                "rules": [
                    {
                        "matches": [{"headers": [{"name": "user", "value": "test"}]}],
                        "backendRefs": [{"name": "splitdim-2"}],
                    },
                    {"backendRefs": [{"name": "splitdim"}]},
                ],
            }
        }
    ]
    return snap


def build(telemetry: Telemetry, snapshot: Snapshot | None = None, **options) -> dict:
    return build_graph(
        NS, telemetry, snapshot, GraphOptions(**options), source="prometheus", source_location="x", at=1e9
    )


def test_destination_telemetry_wins_and_unserved_requests_land_on_the_service():
    nodes, edges = index(build(lab_telemetry()))
    # Each request counted once although both proxies reported it.
    assert rate(edges[(GATEWAY, SPLITDIM_SVC)]) == 20.0
    assert rate(edges[(SPLITDIM_SVC, SPLITDIM)]) == 24.5
    # The aborted requests reached no workload: they end at the kvstore service, with the served ones.
    caller = edges[(SPLITDIM, KVSTORE_SVC)]
    assert rate(caller) == 24.5 and rate(edges[(KVSTORE_SVC, KVSTORE)]) == 22.5
    assert caller["traffic"]["rates"]["http5xx"] == 2.0
    assert caller["traffic"]["rates"]["httpPercentErr"] == pytest.approx(8.2)
    assert caller["traffic"]["responses"] == {
        "200": {"flags": {"-": 91.8}, "hosts": {"kvstore.lab.svc.cluster.local": 91.8}},
        "500": {"flags": {"FI": 8.2}, "hosts": {"kvstore.lab.svc.cluster.local": 8.2}},
    }
    assert caller["healthStatus"] == "Degraded" and edges[(KVSTORE_SVC, KVSTORE)]["healthStatus"] == "Healthy"
    assert nodes[SPLITDIM]["healthStatus"] == "Degraded"  # its outbound requests fail
    assert nodes[UNKNOWN]["nodeType"] == "unknown" and nodes[UNKNOWN]["isRoot"]
    assert nodes[SPLITDIM]["traffic"] == [{"protocol": "http", "rates": {"httpIn": 24.5, "httpOut": 24.5}}]
    assert nodes[KVSTORE_SVC]["traffic"][0]["rates"] == {"httpIn": 24.5, "httpIn5xx": 2.0, "httpOut": 22.5}
    assert nodes[KVSTORE]["destServices"] == [{"cluster": CLUSTER, "namespace": NS, "name": "kvstore"}]


def test_ten_percent_of_5xx_is_a_failure():
    _, edges = index(build(lab_telemetry(fault_rate=2.45)))
    assert edges[(SPLITDIM, KVSTORE_SVC)]["traffic"]["rates"]["httpPercentErr"] == 10.0
    assert edges[(SPLITDIM, KVSTORE_SVC)]["healthStatus"] == "Failure"


def test_without_service_nodes_unserved_requests_get_a_terminal_service_node():
    nodes, edges = index(build(lab_telemetry(), inject_services=False))
    assert rate(edges[(SPLITDIM, KVSTORE)]) == 22.5 and edges[(SPLITDIM, KVSTORE)]["healthStatus"] == "Healthy"
    assert rate(edges[(SPLITDIM, KVSTORE_SVC)]) == 2.0 and edges[(SPLITDIM, KVSTORE_SVC)]["healthStatus"] == "Failure"
    assert (GATEWAY, SPLITDIM) in edges and SPLITDIM_SVC not in nodes


def test_response_time_prefers_destination_proxies_and_skips_edges_into_services():
    _, edges = index(build(lab_telemetry()))
    assert edges[(KVSTORE_SVC, KVSTORE)]["responseTime"] == 4.8
    assert edges[(SPLITDIM_SVC, SPLITDIM)]["responseTime"] == 9
    assert "responseTime" not in edges[(SPLITDIM, KVSTORE_SVC)]


def test_mtls_share_and_principals():
    _, edges = index(build(lab_telemetry()))
    assert edges[(GATEWAY, SPLITDIM_SVC)]["isMTLS"] == 100.0
    assert "isMTLS" not in edges[(UNKNOWN, SPLITDIM_SVC)]
    assert edges[(SPLITDIM_SVC, SPLITDIM)]["isMTLS"] == pytest.approx(100 * 20 / 24.5, abs=0.05)


def test_badges_idle_nodes_and_readiness_from_the_cluster():
    nodes, _ = index(build(lab_telemetry(), lab_snapshot()))
    assert nodes[GATEWAY]["badges"] == ["GW", "RR", "RO"]
    assert nodes[GATEWAY]["isGateway"] == {"gatewayAPIInfo": {"hostnames": ["shop.example"]}}
    assert nodes[KVSTORE_SVC]["badges"] == ["VS", "FI", "RR"]
    assert nodes[KVSTORE_SVC]["hasVS"] == {"hostnames": ["kvstore"]} and nodes[KVSTORE_SVC]["app"] == "kvstore"
    assert nodes[SPLITDIM_SVC]["badges"] == ["CB"]
    idle = nodes[("splitdim-2", "workload")]
    assert idle["isIdle"] and idle["healthStatus"] == "Degraded"  # no traffic, one replica of two ready
    assert idle["workloadStatus"] == {
        "kind": "Deployment", "desiredReplicas": 2, "currentReplicas": 2, "availableReplicas": 1
    }  # fmt: skip
    legacy = nodes[("legacy", "workload")]
    assert legacy["badges"] == ["MS"] and legacy["isOutOfMesh"] and legacy["healthStatus"] == "Failure"


def test_json_is_stable_and_ids_are_hashes_of_kiali_ids():
    first, second = build(lab_telemetry(), lab_snapshot()), build(lab_telemetry(), lab_snapshot())
    assert first == second
    nodes, edges = index(first)
    assert nodes[KVSTORE]["id"] == public_id(f"wl_{CLUSTER}_{NS}_kvstore")
    assert nodes[UNKNOWN]["id"] == public_id("unknown_unknown_source")
    edge = edges[(KVSTORE_SVC, KVSTORE)]
    assert (edge["source"], edge["target"]) == (nodes[KVSTORE_SVC]["id"], nodes[KVSTORE]["id"])
    assert first["graphType"] == "workload" and first["duration"] == 10 and first["timestamp"] == 1_000_000_000
    assert first["status"] == {"ok": True, "message": ""} and first["source"] == "prometheus"


def test_requests_from_another_namespace_that_nobody_served():
    unserved = requests("frontend", "unknown", "kvstore", 3.0, code="503", flags="UH")
    unserved = Sample({**unserved.labels, **peer("source", "frontend", "shop")}, 3.0)
    nodes, edges = index(build(Telemetry([[unserved], [], []], [], [])))
    caller = nodes[("frontend", "workload")]
    assert caller["isOutside"] and caller["namespace"] == "shop"
    assert edges[(("frontend", "workload"), KVSTORE_SVC)]["healthStatus"] == "Failure"


@pytest.mark.parametrize(
    ("codes", "status"),
    [
        ({"http": {"200": 99.0}}, "Healthy"),
        ({"http": {"200": 99.0, "503": 1.0}}, "Degraded"),  # any 5xx
        ({"http": {"200": 90.0, "500": 10.0}}, "Failure"),
        ({"http": {"200": 90.1, "404": 9.9}}, "Healthy"),
        ({"http": {"200": 90.0, "404": 10.0}}, "Degraded"),
        ({"http": {"200": 80.0, "429": 20.0}}, "Failure"),
        ({"http": {"200": 95.0, "-": 5.0}}, "Degraded"),  # no response counts like 5xx
        ({"grpc": {"0": 90.0, "14": 10.0}}, "Failure"),
        ({"http": {}}, "NA"),
    ],
)
def test_kiali_request_health_thresholds(codes, status):
    assert health.request_status(codes) == status


def test_workload_readiness_and_worst_of():
    assert health.workload_status(desired=0, available=0, pending=0) == "Not Ready"
    assert health.workload_status(desired=3, available=2, pending=0) == "Degraded"
    assert health.workload_status(desired=1, available=0, pending=0) == "Failure"
    assert health.workload_status(desired=1, available=1, pending=1) == "Failure"
    assert health.worst("Healthy", "NA", "Degraded", "Not Ready") == "Degraded"


def test_build_leaves_the_collector_as_it_was_and_no_cyclic_garbage():
    import gc

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # unreachable objects go to gc.garbage instead of being freed
    try:
        graph = build(lab_telemetry(), lab_snapshot())
        assert gc.isenabled()
        gc.collect()
        left = [o for o in gc.garbage if type(o).__module__.startswith("meshgraph")]
        assert left == [], "the traffic map left reference cycles behind"
        gc.disable()
        assert build(lab_telemetry(), lab_snapshot()) == graph
        assert not gc.isenabled()  # a caller's choice to run without the collector is kept
    finally:
        gc.enable()
        gc.set_debug(0)
        gc.garbage.clear()
