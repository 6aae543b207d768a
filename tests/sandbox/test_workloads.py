"""Workloads on the sandbox: the lab's curl sequence, service discovery, probe Jobs, unknown images."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.conftest import wait_for
from tests.sandbox.test_kubectl import lab_manifest

pytestmark = pytest.mark.cluster


def deploy_lab(sandbox, namespace: str) -> None:
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=lab_manifest("splitdim.yaml", namespace))
    sandbox.kubectl("-n", namespace, "rollout", "status", "deployment/splitdim", "--timeout=20s")
    sandbox.kubectl("-n", namespace, "rollout", "status", "statefulset/kvstore", "--timeout=20s")


def external_address(sandbox, namespace: str, service: str) -> tuple[str, int]:
    """EXTERNAL_IP and the port to use: 80 as in the lab where it may be bound, else the node port."""
    ip = wait_for(
        lambda: (
            sandbox.kubectl(
                "-n", namespace, "get", "service", service, "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"
            ).stdout
        ),
        what="external IP",
    )
    if os.geteuid() == 0:
        return ip, 80
    node_port = sandbox.kubectl(
        "-n", namespace, "get", "service", service, "-o", "jsonpath={.spec.ports[0].nodePort}"
    ).stdout
    return ip, int(node_port)


def test_lab_curl_sequence_through_the_load_balancer(sandbox, namespace):
    deploy_lab(sandbox, namespace)
    ip, port = external_address(sandbox, namespace, "splitdim")
    base = f"http://{ip}:{port}"
    with httpx.Client(base_url=base, timeout=5) as c:
        assert c.get("/api/reset").status_code == 200
        for body in ({"sender": "a", "receiver": "b", "amount": 2}, {"sender": "b", "receiver": "c", "amount": 1}):
            r = c.post("/api/transfer", json=body)
            assert r.status_code == 200, r.text
        accounts = c.get("/api/accounts").json()
        assert accounts == [
            {"holder": "a", "balance": 2},
            {"holder": "b", "balance": -1},
            {"holder": "c", "balance": -1},
        ]
        clear = c.get("/api/clear").json()
        assert sorted((t["sender"], t["receiver"], t["amount"]) for t in clear) == [("b", "a", 1), ("c", "a", 1)]
        assert c.put("/api/transfer").status_code == 405
        assert c.post("/api/transfer", content=b"dummy").status_code == 400
    # The balances live in the kvstore pod (kvstore mode), so they survive a SplitDim restart.
    sandbox.kubectl("-n", namespace, "rollout", "restart", "deployment/splitdim")
    sandbox.kubectl("-n", namespace, "rollout", "status", "deployment/splitdim", "--timeout=20s")
    after = wait_for(lambda: httpx.get(f"{base}/api/accounts", timeout=2).json(), what="accounts after restart")
    assert {a["holder"]: a["balance"] for a in after} == {"a": 2, "b": -1, "c": -1}


PROBE = """
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: curl
        image: curlimages/curl:8.10.1
        args: ["-sf", "--max-time", "2", "{url}"]
"""


def job_result(sandbox, namespace: str, name: str) -> str:
    def finished() -> str:
        conds = sandbox.kubectl(
            "-n", namespace, "get", "job", name, "-o", 'jsonpath={.status.conditions[?(@.status=="True")].type}'
        ).stdout
        return "Complete" if "Complete" in conds else ("Failed" if "Failed" in conds else "")

    return wait_for(finished, 15, what=f"job {name} to finish")


@pytest.mark.parametrize(
    "host",
    ["kvstore:8081", "kvstore.{ns}:8081", "kvstore.{ns}.svc.cluster.local:8081", "kvstore-0.kvstore.{ns}.svc:8081"],
)
def test_service_names_resolve_from_pods(sandbox, namespace, host):
    deploy_lab(sandbox, namespace)
    url = f"http://{host.format(ns=namespace)}/api/list"
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=PROBE.format(name="probe", url=url))
    assert job_result(sandbox, namespace, "probe") == "Complete"
    pods = sandbox.kubectl("-n", namespace, "get", "pods", "-l", "job-name=probe", "--no-headers").stdout.split()
    assert pods[2] == "Completed" and pods[1] == "0/1"


def test_probe_job_fails_on_unknown_host_and_refused_port(sandbox, namespace):
    deploy_lab(sandbox, namespace)
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=PROBE.format(name="nohost", url="http://nothere:80/"))
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=PROBE.format(name="noport", url="http://kvstore:9999/"))
    assert job_result(sandbox, namespace, "nohost") == "Failed"
    assert job_result(sandbox, namespace, "noport") == "Failed"
    for job in ("nohost", "noport"):
        code = sandbox.kubectl(
            "-n",
            namespace,
            "get",
            "pods",
            "-l",
            f"job-name={job}",
            "-o",
            "jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}",
        ).stdout
        assert code not in ("", "0")


def test_unknown_image_is_image_pull_back_off(sandbox, namespace):
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n"
        "  - name: web\n    image: nginx:1.27\n"
    )
    sandbox.kubectl("-n", namespace, "apply", "-f", "-", input=pod)

    def status() -> list[str]:
        row = sandbox.kubectl("-n", namespace, "get", "pod", "web", "--no-headers").stdout.split()
        return row if row[2] == "ImagePullBackOff" else []

    row = wait_for(status, what="ImagePullBackOff")
    assert row[1] == "0/1"
    message = sandbox.kubectl(
        "-n", namespace, "get", "pod", "web", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}"
    ).stdout
    assert message == 'Back-off pulling image "nginx:1.27"'


def test_pod_addresses_are_distinct_and_really_listen(sandbox, namespace):
    deploy_lab(sandbox, namespace)
    ips = sandbox.kubectl("-n", namespace, "get", "pods", "-o", "jsonpath={.items[*].status.podIP}").stdout.split()
    assert len(ips) == 2 and len(set(ips)) == 2 and all(ip.startswith("127.") for ip in ips)
    kv_ip = sandbox.kubectl("-n", namespace, "get", "pod", "kvstore-0", "-o", "jsonpath={.status.podIP}").stdout
    assert httpx.get(f"http://{kv_ip}:8081/api/list", timeout=2).json() == []
