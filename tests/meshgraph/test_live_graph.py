"""The graph of the lab's mesh, from a real Prometheus and from the embedded source, on real traffic.

Each test deploys the lab (SplitDim, kvstore, the gateway) into its own namespace of the session's
sandbox and sends paced requests through the gateway, and some from outside the mesh straight to the
splitdim pod. Rates are compared with what was sent; the fault and mTLS steps use the lab's manifests.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from meshgraph.build import GraphOptions, graph_for
from meshgraph.cluster import ClusterReader
from meshgraph.sources import EmbeddedSource, PrometheusSource
from tests.meshgraph.lab import (
    GATEWAY,
    KVSTORE,
    KVSTORE_SVC,
    MESH_PATH,
    SPLITDIM,
    SPLITDIM_SVC,
    UNKNOWN,
    Traffic,
    binomial_bounds,
    close_to,
    eventually,
    index,
    rate,
    targets_of,
)
from tests.sandbox.test_kubectl import lab_manifest
from tests.sandbox.test_mesh import deploy_mesh_lab, pod_ips

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

THROUGH_GATEWAY = 20.0  # requests per second
FROM_OUTSIDE = 5.0


async def lab(sandbox, namespace: str, prometheus: str) -> tuple[str, str]:
    """Deploy the lab; return the gateway's URL and the splitdim pod's address once Prometheus scrapes it."""
    base = await asyncio.to_thread(deploy_mesh_lab, sandbox, namespace)
    splitdim_ip = (await asyncio.to_thread(pod_ips, sandbox, namespace, "app=splitdim"))[0]

    async def scraped() -> bool:
        async with httpx.AsyncClient(base_url=prometheus) as client:
            answer = await client.get("/api/v1/query", params={"query": f'up{{namespace="{namespace}"}}'})
        result = answer.json()["data"]["result"]
        return len(result) == 3 and all(r["value"][1] == "1" for r in result)

    await eventually(scraped, 20, "Prometheus scrapes the gateway, splitdim and kvstore proxies")
    return base, splitdim_ip


@pytest.mark.asyncio
async def test_edges_match_the_traffic_sent_and_both_sources_agree(sandbox, prometheus, namespace, api_client):
    base, splitdim_ip = await lab(sandbox, namespace, prometheus)
    reader = ClusterReader(api_client, namespace)
    options = GraphOptions(window_s=10)
    from_prometheus = PrometheusSource(prometheus)
    async with EmbeddedSource(targets_of(reader)) as embedded:
        gateway = Traffic(f"{base}/api/clear", THROUGH_GATEWAY).start()
        outside = Traffic(f"http://{splitdim_ip}:8080/api/accounts", FROM_OUTSIDE).start()
        seen: list = []

        async def both_accurate() -> tuple[dict, dict, dict] | None:
            # Both graphs for the same instant, compared with the requests answered in their window:
            # the traffic sent, shifted by however long a busy sandbox took to answer it.
            at = min(from_prometheus.instant(), embedded.instant())
            graphs = (await graph_for(namespace, from_prometheus, reader, options, at),
                      await graph_for(namespace, embedded, reader, options, at))  # fmt: skip
            through, direct = (t.served(at - options.window_s, at) for t in (gateway, outside))
            expected = {
                (GATEWAY, SPLITDIM_SVC): through,
                (UNKNOWN, SPLITDIM_SVC): direct,
                (SPLITDIM_SVC, SPLITDIM): through + direct,
                (SPLITDIM, KVSTORE_SVC): through + direct,  # each call lists the store once
                (KVSTORE_SVC, KVSTORE): through + direct,
            }
            edges = [index(g)[1] for g in graphs]
            seen[:] = [expected, *({pair: rate(e.get(pair)) for pair in expected} for e in edges)]
            accurate = all(close_to(rate(e.get(pair)), want, 0.05) for e in edges for pair, want in expected.items())
            accurate &= all(close_to(rate(edges[0].get(pair)), rate(edges[1].get(pair)), 0.05) for pair in expected)
            flowing = through > THROUGH_GATEWAY / 2 and direct > FROM_OUTSIDE / 2  # not a window of silence
            return (*graphs, expected) if accurate and flowing else None

        try:
            *graphs, expected = await eventually(
                both_accurate, 20, lambda: f"rates as sent (expected, Prometheus, embedded): {seen}"
            )
        finally:
            for t in (gateway, outside):
                await t.stop()
        await from_prometheus.aclose()
    assert gateway.codes.keys() == outside.codes.keys() == {200}
    (nodes, edges), (embedded_nodes, embedded_edges) = (index(g) for g in graphs)
    assert [g["source"] for g in graphs] == ["prometheus", "embedded"]
    assert [g["status"] for g in graphs] == [{"ok": True, "message": ""}] * 2
    # The same graph: the same nodes and edges, the same ids, rates within 5% of each other.
    assert {k: d["id"] for k, d in nodes.items()} == {k: d["id"] for k, d in embedded_nodes.items()}
    assert edges.keys() == embedded_edges.keys() == expected.keys()
    for pair, edge in edges.items():
        assert close_to(rate(edge), rate(embedded_edges[pair]), 0.05), pair
        assert edge["healthStatus"] == embedded_edges[pair]["healthStatus"] == "Healthy"
        assert edge["traffic"]["rates"]["httpPercentErr"] == 0.0
        assert edge["traffic"]["responses"]["200"]["flags"] == {"-": 100.0}
    # Clients outside the mesh are the unknown source; the gateway is the other entry point.
    assert nodes[UNKNOWN]["isRoot"] and nodes[GATEWAY]["isRoot"]
    assert nodes[GATEWAY]["badges"] == ["GW", "RO"] and "gatewayAPIInfo" in nodes[GATEWAY]["isGateway"]
    assert "isMTLS" not in edges[(UNKNOWN, SPLITDIM_SVC)]  # plain text from outside, no lock
    for pair in MESH_PATH:
        if pair != (SPLITDIM_SVC, SPLITDIM):
            assert edges[pair]["isMTLS"] == 100.0
    # The service's edge to its workload carries both: the share of mutual TLS is the gateway's share.
    share = 100 * expected[(GATEWAY, SPLITDIM_SVC)] / expected[(SPLITDIM_SVC, SPLITDIM)]
    assert close_to(edges[(SPLITDIM_SVC, SPLITDIM)]["isMTLS"], share, 0.05)
    # p95 comes from destination proxies, only on edges into workloads (none into service nodes).
    assert edges[(SPLITDIM_SVC, SPLITDIM)]["responseTime"] > 0
    assert "responseTime" not in edges[(GATEWAY, SPLITDIM_SVC)]
    assert nodes[SPLITDIM]["workloadStatus"]["availableReplicas"] == 1
    assert nodes[KVSTORE]["healthStatus"] == "Healthy"


@pytest.mark.asyncio
async def test_fault_injection_turns_the_store_edge_red_and_back(sandbox, prometheus, namespace, api_client):
    base, _ = await lab(sandbox, namespace, prometheus)
    reader = ClusterReader(api_client, namespace, max_age=1.0)
    options = GraphOptions(window_s=6)
    source = PrometheusSource(prometheus)
    traffic = Traffic(f"{base}/api/clear", 50).start()

    async def store_edge() -> tuple[dict, dict]:
        nodes, edges = index(await graph_for(namespace, source, reader, options))
        return nodes, edges.get((SPLITDIM, KVSTORE_SVC)) or {}

    async def healthy() -> bool:
        _, edge = await store_edge()
        return edge.get("healthStatus") == "Healthy"

    try:
        await eventually(healthy, 15, "the splitdim -> kvstore edge is green")
        await asyncio.to_thread(
            sandbox.kubectl, "-n", namespace, "apply", "-f", "-", input=lab_manifest("fault.yaml", namespace)
        )

        async def failing() -> tuple[dict, dict] | None:
            nodes, edge = await store_edge()
            if edge.get("healthStatus") not in ("Degraded", "Failure"):
                return None
            low, high = binomial_bounds(rate(edge) * options.window_s, 0.10)  # n = requests in the window
            return (nodes, edge) if low <= edge["traffic"]["rates"]["httpPercentErr"] <= high else None

        nodes, edge = await eventually(failing, 10, "the store edge shows about 10% errors")
        assert set(edge["traffic"]["responses"]["500"]["flags"]) == {"FI"}  # injected, not real failures
        assert {"VS", "FI", "RR"} <= set(nodes[KVSTORE_SVC]["badges"])
        assert nodes[KVSTORE_SVC]["hasVS"]["hostnames"] == ["kvstore"]
        assert nodes[SPLITDIM]["healthStatus"] in ("Degraded", "Failure")  # its outbound requests fail

        await asyncio.to_thread(sandbox.kubectl, "-n", namespace, "delete", "virtualservice", "kvstore-500")
        await eventually(healthy, options.window_s + 6, "the store edge is green again after the revert")
        nodes, _ = await store_edge()
        assert "FI" not in nodes[KVSTORE_SVC]["badges"]
    finally:
        await traffic.stop()
        await source.aclose()
    assert set(traffic.codes) <= {200, 500}


@pytest.mark.asyncio
async def test_strict_mtls_leaves_only_locked_mesh_edges(sandbox, prometheus, namespace, api_client):
    base, splitdim_ip = await lab(sandbox, namespace, prometheus)
    reader = ClusterReader(api_client, namespace)
    options = GraphOptions(window_s=5)
    source = PrometheusSource(prometheus)
    traffic = [
        Traffic(f"{base}/api/clear", THROUGH_GATEWAY).start(),
        Traffic(f"http://{splitdim_ip}:8080/api/accounts", FROM_OUTSIDE, keepalive=False).start(),
    ]

    async def edges() -> dict:
        return index(await graph_for(namespace, source, reader, options))[1]

    async def permissive() -> dict | None:
        found = await edges()
        return found if (UNKNOWN, SPLITDIM_SVC) in found and all(p in found for p in MESH_PATH) else None

    try:
        before = await eventually(permissive, 15, "mesh and plain-text edges")
        assert "isMTLS" not in before[(UNKNOWN, SPLITDIM_SVC)]
        await asyncio.to_thread(
            sandbox.kubectl, "-n", namespace, "apply", "-f", "-", input=lab_manifest("mtls.yaml", namespace)
        )

        last: list = []

        async def strict() -> dict | None:
            found = await edges()
            last[:] = [{k: (rate(v), v.get("isMTLS")) for k, v in found.items()}, dict(traffic[1].codes)]
            return found if (UNKNOWN, SPLITDIM_SVC) not in found and all(p in found for p in MESH_PATH) else None

        after = await eventually(strict, options.window_s + 8, lambda: f"only mesh edges left: {last}")
    finally:
        for t in traffic:
            await t.stop()
        await source.aclose()
    assert after.keys() == set(MESH_PATH)
    assert all(edge["isMTLS"] == 100.0 for edge in after.values())
    assert all(edge["sourcePrincipal"].startswith("spiffe://") for edge in after.values())
    assert traffic[1].codes["error"] > 0 and traffic[0].codes.keys() == {200}


@pytest.mark.asyncio
async def test_unreachable_prometheus_is_reported_and_the_graph_still_comes(
    sandbox, namespace, api_client, closed_port
):
    await asyncio.to_thread(deploy_mesh_lab, sandbox, namespace)
    source = PrometheusSource(f"http://127.0.0.1:{closed_port}")
    graph = await graph_for(namespace, source, ClusterReader(api_client, namespace), GraphOptions())
    await source.aclose()
    assert graph["status"]["ok"] is False
    assert graph["status"]["message"].startswith(f"Prometheus at http://127.0.0.1:{closed_port} is unreachable")
    nodes, edges = index(graph)
    # What the cluster says is still drawn: the lab's workloads, idle, with their readiness.
    assert {GATEWAY, SPLITDIM, KVSTORE} <= nodes.keys() and not edges
    assert all(nodes[k]["isIdle"] and nodes[k]["healthStatus"] == "Healthy" for k in (GATEWAY, SPLITDIM, KVSTORE))
