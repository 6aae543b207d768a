"""The sandbox's mesh data plane on the lab's own manifests: routing, fault injection, mTLS, telemetry."""

from __future__ import annotations

import asyncio
import math
import re

import httpx
import pytest

from tests.conftest import wait_for
from tests.sandbox.test_kubectl import lab_manifest

pytestmark = pytest.mark.cluster

SERIES = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>.*)\} (?P<value>[0-9.e+-]+)$")


def scrape(ip: str) -> list[tuple[str, dict, float]]:
    """One proxy's metrics, parsed from Prometheus text format."""
    out = []
    for line in httpx.get(f"http://{ip}:15020/stats/prometheus", timeout=5).text.splitlines():
        m = SERIES.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m["labels"]))
            out.append((m["name"], labels, float(m["value"])))
    return out


def requests_total(ips: list[str], **match: str) -> float:
    return sum(
        v
        for ip in ips
        for name, labels, v in scrape(ip)
        if name == "istio_requests_total" and all(labels.get(k) == want for k, want in match.items())
    )


def pod_ips(sandbox, namespace: str, selector: str) -> list[str]:
    return sandbox.kubectl(
        "-n", namespace, "get", "pods", "-l", selector, "-o", "jsonpath={.items[*].status.podIP}"
    ).stdout.split()


def deploy_mesh_lab(sandbox, namespace: str, *steps: str) -> str:
    """Injected SplitDim + kvstore behind the lab's gateway; returns the gateway's base URL."""
    sandbox.kubectl("label", "namespace", namespace, "istio-injection=enabled")
    for step in ("splitdim.yaml", "gateway.yaml", *steps):
        sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest(step, namespace))
    for workload in ("deployment/splitdim", "statefulset/kvstore", "deployment/splitdim-istio"):
        sandbox.kubectl("-n", namespace, "rollout", "status", workload, "--timeout=20s")
    if "routing.yaml" in steps:
        sandbox.kubectl("-n", namespace, "rollout", "status", "deployment/splitdim-2", "--timeout=20s")
    sandbox.kubectl("-n", namespace, "wait", "--for=condition=Programmed", "gateway/splitdim", "--timeout=20s")
    ip = sandbox.kubectl(
        "-n", namespace, "get", "svc", "splitdim-istio", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"
    ).stdout
    port = sandbox.kubectl(
        "-n", namespace, "get", "svc", "splitdim-istio", "-o", "jsonpath={.spec.ports[?(@.port==80)].nodePort}"
    ).stdout
    base = f"http://{ip}:{port}"
    wait_for(lambda: httpx.get(f"{base}/api/accounts", timeout=2).status_code == 200, what="the gateway route")
    return base


async def fire(
    base: str, n: int, headers: dict | None = None, path: str = "/api/clear", concurrency: int = 16
) -> list[int]:
    """Send `n` requests with bounded concurrency; return their status codes."""
    codes: list[int] = []
    queue = iter(range(n))
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=httpx.Limits(max_connections=concurrency)) as c:

        async def worker() -> None:
            for _ in queue:
                codes.append((await c.get(path, headers=headers)).status_code)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return codes


def test_header_routing_with_the_labs_httproute(sandbox, namespace):
    base = deploy_mesh_lab(sandbox, namespace, "routing.yaml")
    v1, v2 = pod_ips(sandbox, namespace, "app=splitdim"), pod_ips(sandbox, namespace, "app=splitdim-2")
    seen = dict(reporter="destination", destination_workload_namespace=namespace)

    def counted() -> tuple[float, float]:
        return (
            requests_total(v2, destination_workload="splitdim-2", **seen),
            requests_total(v1, destination_workload="splitdim", **seen),
        )

    before = counted()
    codes = asyncio.run(fire(base, 60, {"user": "test"}, "/api/accounts"))
    codes += asyncio.run(fire(base, 40, None, "/api/accounts"))
    assert codes == [200] * 100
    after = counted()
    assert (after[0] - before[0], after[1] - before[1]) == (60, 40)
    gateway_series = requests_total(
        pod_ips(sandbox, namespace, "gateway.networking.k8s.io/gateway-name=splitdim"),
        reporter="source",
        source_workload="splitdim-istio",
        destination_service_name="splitdim-2",
    )
    assert gateway_series == 60


def binomial_bounds(n: int, p: float, z: float = 3.29) -> tuple[float, float]:
    """The 99.9% interval of the share of successes in n trials (normal approximation)."""
    half = z * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def test_fault_injection_with_the_labs_virtualservice(sandbox, namespace):
    base = deploy_mesh_lab(sandbox, namespace)
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("fault.yaml", namespace))
    codes = asyncio.run(fire(base, 2000))
    share = codes.count(500) / len(codes)
    low, high = binomial_bounds(len(codes), 0.10)
    assert set(codes) <= {200, 500}
    assert low <= share <= high, f"500 share {share:.3f} outside [{low:.3f}, {high:.3f}]"
    splitdim = pod_ips(sandbox, namespace, "app=splitdim")
    aborted = requests_total(
        splitdim,
        reporter="source",
        source_workload="splitdim",
        destination_service_name="kvstore",
        response_code="500",
        response_flags="FI",
    )
    assert aborted == codes.count(500)

    sandbox.kubectl("-n", namespace, "delete", "virtualservice", "kvstore-500")
    assert set(asyncio.run(fire(base, 300))) == {200}


def test_delay_fault_shows_in_the_latency_histogram(sandbox, namespace):
    base = deploy_mesh_lab(sandbox, namespace)
    delay = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: kvstore-slow}
spec:
  hosts: [kvstore]
  http:
  - fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    route: [{destination: {host: kvstore}}]
"""
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=delay)
    codes = asyncio.run(fire(base, 10))
    assert codes == [200] * 10
    splitdim = pod_ips(sandbox, namespace, "app=splitdim")
    buckets = {
        labels["le"]: v
        for ip in splitdim
        for name, labels, v in scrape(ip)
        if name == "istio_request_duration_milliseconds_bucket"
        and labels.get("reporter") == "source"
        and labels.get("destination_service_name") == "kvstore"
        and labels.get("response_flags") == "DI"
    }
    assert buckets["250"] == 0 and buckets["+Inf"] == 10  # every request waited the 300 ms delay


def test_strict_mtls_with_the_labs_peerauthentication(sandbox, namespace):
    base = deploy_mesh_lab(sandbox, namespace)
    kv_ip = pod_ips(sandbox, namespace, "app=kvstore")[0]
    assert httpx.get(f"http://{kv_ip}:8081/api/list", timeout=2).status_code == 200  # PERMISSIVE: plaintext ok
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("mtls.yaml", namespace))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{kv_ip}:8081/api/list", timeout=2)
    assert set(asyncio.run(fire(base, 50))) == {200}
    mtls = requests_total(
        [kv_ip],
        reporter="destination",
        destination_workload="kvstore",
        source_workload="splitdim",
        connection_security_policy="mutual_tls",
    )
    plain = requests_total(
        [kv_ip], reporter="destination", destination_workload="kvstore", connection_security_policy="none"
    )
    assert mtls >= 50 and plain == 1  # the one plaintext request made before STRICT


def test_requests_from_outside_the_mesh_are_unknown_sources(sandbox, namespace):
    sandbox.kubectl("label", "namespace", namespace, "istio-injection=enabled")
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("splitdim.yaml", namespace))
    sandbox.kubectl("-n", namespace, "rollout", "status", "deployment/splitdim", "--timeout=20s")
    ip = wait_for(
        lambda: (
            sandbox.kubectl(
                "-n", namespace, "get", "svc", "splitdim", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"
            ).stdout
        ),
        what="LB ip",
    )
    port = sandbox.kubectl("-n", namespace, "get", "svc", "splitdim", "-o", "jsonpath={.spec.ports[0].nodePort}").stdout
    assert set(asyncio.run(fire(f"http://{ip}:{port}", 5, path="/api/accounts"))) == {200}
    splitdim = pod_ips(sandbox, namespace, "app=splitdim")
    assert (
        requests_total(
            splitdim,
            reporter="destination",
            source_workload="unknown",
            destination_workload="splitdim",
            connection_security_policy="none",
            destination_service_name="splitdim",
        )
        == 5
    )


BAD_OBJECTS = [
    (
        "bad-regex",
        """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [kvstore]
  http:
  - match: [{uri: {regex: "/api/(list"}}]
    route: [{destination: {host: kvstore}}]
""",
        "spec.http[0].match[0].uri.regex",
    ),
    (
        "percentage-out-of-range",
        """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [kvstore]
  http:
  - fault: {abort: {httpStatus: 500, percentage: {value: 120}}}
    route: [{destination: {host: kvstore}}]
""",
        "spec.http[0].fault.abort.percentage.value",
    ),
    (
        "unknown-route-field",
        """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [kvstore]
  http:
  - route: [{destinaton: {host: kvstore}}]
""",
        "spec.http[0].route[0]",
    ),
    (
        "weights-do-not-add-up",
        """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [kvstore]
  http:
  - route:
    - {destination: {host: kvstore}, weight: 90}
    - {destination: {host: kvstore}, weight: 20}
""",
        "spec.http[0].route",
    ),
    (
        "bad-httproute-regex",
        """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{name: splitdim}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/api/(["}}]
    backendRefs: [{name: splitdim, port: 80}]
""",
        "spec.rules[0].matches[0].path.value",
    ),
]


@pytest.mark.parametrize("case", BAD_OBJECTS, ids=[c[0] for c in BAD_OBJECTS])
def test_invalid_routing_objects_are_rejected_naming_the_field(sandbox, namespace, case):
    _, manifest, field = case
    result = sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "is invalid" in result.stderr or "denied the request" in result.stderr
    assert field in result.stderr, result.stderr
    for kind in ("virtualservices", "httproutes"):
        assert sandbox.kubectl("-n", namespace, "get", kind, "-o", "name").stdout == ""


def test_dangling_routes_never_break_other_routes(sandbox, namespace):
    base = deploy_mesh_lab(sandbox, namespace)
    dangling = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: to-nowhere}
spec:
  hosts: [nothing-here]
  http:
  - route: [{destination: {host: also-missing}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: missing-subset}
spec:
  hosts: [splitdim-2]
  http:
  - route: [{destination: {host: splitdim-2, subset: v9}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: other}
spec:
  parentRefs: [{name: splitdim}]
  hostnames: [other.example]
  rules:
  - backendRefs: [{name: no-such-service, port: 80}]
"""
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=dangling)
    assert set(asyncio.run(fire(base, 40))) == {200}
    status = sandbox.kubectl(
        "-n",
        namespace,
        "get",
        "httproute",
        "other",
        "-o",
        'jsonpath={.status.parents[0].conditions[?(@.type=="ResolvedRefs")].reason}',
    ).stdout
    assert status == "BackendNotFound"


def test_a_pod_outside_the_mesh_is_refused_under_strict(sandbox, namespace):
    deploy_mesh_lab(sandbox, namespace)
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("mtls.yaml", namespace))
    probe = """
apiVersion: batch/v1
kind: Job
metadata: {name: outside}
spec:
  backoffLimit: 0
  template:
    metadata: {labels: {sidecar.istio.io/inject: "false"}}
    spec:
      restartPolicy: Never
      containers:
      - {name: curl, image: curlimages/curl, args: ["-s", "--max-time", "3", "http://kvstore:8081/api/list"]}
"""
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=probe)

    def exit_code() -> str:
        return sandbox.kubectl(
            "-n",
            namespace,
            "get",
            "pods",
            "-l",
            "job-name=outside",
            "-o",
            "jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}",
        ).stdout

    code = wait_for(exit_code, 15, what="the probe to finish")
    assert code not in ("0", ""), "a plaintext client outside the mesh must not get through under STRICT"
