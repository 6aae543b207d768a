"""A real Prometheus scrapes the sandbox's proxies; Kiali's workload-graph queries see the traffic sent."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.conftest import wait_for
from tests.prometheus import query
from tests.sandbox.test_mesh import deploy_mesh_lab

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

GROUPING = (
    "source_cluster,source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,"
    "destination_cluster,destination_service_namespace,destination_service,destination_service_name,"
    "destination_workload_namespace,destination_workload,destination_canonical_service,"
    "destination_canonical_revision,request_protocol,response_code,grpc_response_status,response_flags"
)
RATE = 20.0  # requests per second through the gateway
SECONDS = 14
WINDOW = "10s"


async def paced(base: str, rate: float, seconds: float) -> int:
    """Send requests at a fixed rate against absolute time (no drift), concurrently; return how many."""
    sent = 0
    tasks = []
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        start = time.monotonic()
        while (due := start + sent / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.ensure_future(client.get("/api/clear")))
            sent += 1
        codes = [r.status_code for r in await asyncio.gather(*tasks)]
    assert set(codes) == {200}
    return sent


def kiali_query(namespace: str, reporter: str) -> str:
    side = "destination_workload_namespace" if reporter == "destination" else "source_workload_namespace"
    return (
        f'round(sum(rate(istio_requests_total{{reporter="{reporter}",{side}="{namespace}"}}[{WINDOW}])) '
        f"by ({GROUPING}) > 0,0.001)"
    )


def edges(result: list[dict]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for series in result:
        m = series["metric"]
        key = (m["source_workload"], m["destination_workload"])
        out[key] = out.get(key, 0.0) + float(series["value"][1])
    return out


def test_kiali_workload_graph_queries_match_the_traffic(sandbox, prometheus, namespace):
    base = deploy_mesh_lab(sandbox, namespace)
    wait_for(
        lambda: (
            query(prometheus, f'up{{namespace="{namespace}"}}')
            and all(s["value"][1] == "1" for s in query(prometheus, f'up{{namespace="{namespace}"}}'))
        ),
        timeout=20,
        what="Prometheus to scrape the namespace's proxies",
    )
    asyncio.run(paced(base, RATE, SECONDS))
    at = time.time() - 1.5  # a moment inside the steady part, after the last scrape of it
    incoming = edges(query(prometheus, kiali_query(namespace, "destination"), at))
    outgoing = edges(query(prometheus, kiali_query(namespace, "source"), at))
    for graph in (incoming, outgoing):
        assert graph[("splitdim-istio", "splitdim")] == pytest.approx(RATE, rel=0.05)
        assert graph[("splitdim", "kvstore")] == pytest.approx(RATE, rel=0.05)
    # The gateway reports only as a source, so its inbound side is the unknown-source edge nobody reports.
    assert ("unknown", "splitdim-istio") not in incoming
    principals = query(
        prometheus,
        f'sum(rate(istio_requests_total{{reporter="destination",'
        f'destination_workload="kvstore",destination_workload_namespace="{namespace}"}}'
        f"[{WINDOW}])) by (source_principal,connection_security_policy)",
        at,
    )
    assert [(p["metric"]["source_principal"], p["metric"]["connection_security_policy"]) for p in principals] == [
        (f"spiffe://cluster.local/ns/{namespace}/sa/default", "mutual_tls")
    ]
