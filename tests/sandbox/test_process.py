"""The sandbox process itself: state across restarts, single-address mode, clean shutdown, file_sd."""

from __future__ import annotations

import json
import signal

import httpx
import pytest

from tests.conftest import start_sandbox, wait_for
from tests.sandbox.test_kubectl import lab_manifest

pytestmark = pytest.mark.cluster

NS = "lab"


def apply_lab(sb) -> None:
    sb.kubectl("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n")
    sb.kubectl("label", "namespace", NS, "istio-injection=enabled")
    sb.kubectl("-n", NS, "apply", "-f", "-", input=lab_manifest("splitdim.yaml", NS))
    sb.kubectl("-n", NS, "rollout", "status", "deployment/splitdim", "--timeout=20s")
    sb.kubectl("-n", NS, "rollout", "status", "statefulset/kvstore", "--timeout=20s")


def lb_base(sb) -> str:
    svc = json.loads(sb.kubectl("-n", NS, "get", "svc", "splitdim", "-o", "json").stdout)
    ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    return f"http://{ip}:{svc['spec']['ports'][0]['nodePort']}"


def test_state_survives_restart(tmp_path):
    state = tmp_path / "state"
    sb = start_sandbox(tmp_path / "one", state_dir=state)
    try:
        apply_lab(sb)
        base = lb_base(sb)
        httpx.post(f"{base}/api/transfer", json={"sender": "a", "receiver": "b", "amount": 5}, timeout=5)
        pods_before = sorted(
            sb.kubectl("-n", NS, "get", "pods", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
        )
        uid_before = sb.kubectl("-n", NS, "get", "deploy", "splitdim", "-o", "jsonpath={.metadata.uid}").stdout
    finally:
        assert sb.stop() == 0
    sb = start_sandbox(tmp_path / "two", state_dir=state)
    try:
        assert sb.kubectl("-n", NS, "get", "deploy", "splitdim", "-o", "jsonpath={.metadata.uid}").stdout == uid_before
        pods_after = sorted(
            sb.kubectl("-n", NS, "get", "pods", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
        )
        assert pods_after == pods_before

        def running() -> bool:
            rows = sb.kubectl("-n", NS, "get", "pods", "--no-headers").stdout.splitlines()
            return len(rows) == 2 and all(r.split()[1] == "2/2" and r.split()[2] == "Running" for r in rows)

        wait_for(running, what="pods back after restart")
        accounts = wait_for(lambda: httpx.get(f"{lb_base(sb)}/api/accounts", timeout=2).json(), what="accounts")
        assert {a["holder"]: a["balance"] for a in accounts} == {"a": 5, "b": -5}
    finally:
        assert sb.stop() == 0


def test_single_address_mode(tmp_path):
    sb = start_sandbox(tmp_path, "--single-address")
    try:
        assert "only 127.0.0.1 can be bound" in sb.log_path.read_text()
        apply_lab(sb)
        base = lb_base(sb)
        assert base.startswith("http://127.0.0.1:")
        r = httpx.post(f"{base}/api/transfer", json={"sender": "x", "receiver": "y", "amount": 1}, timeout=5)
        assert r.status_code == 200
        assert httpx.get(f"{base}/api/accounts", timeout=5).json() == [
            {"holder": "x", "balance": 1},
            {"holder": "y", "balance": -1},
        ]
    finally:
        assert sb.stop(signal.SIGINT) == 0


def test_prometheus_file_sd_follows_pods(tmp_path):
    sd = tmp_path / "targets.json"
    sb = start_sandbox(tmp_path, "--prometheus-sd", str(sd))
    try:
        assert json.loads(sd.read_text()) == []
        apply_lab(sb)
        targets = wait_for(
            lambda: len(json.loads(sd.read_text())) == 2 and json.loads(sd.read_text()), what="two targets"
        )
        assert {t["labels"]["namespace"] for t in targets} == {NS}
        assert all(t["targets"][0].endswith(":15020") for t in targets)
        sb.kubectl("-n", NS, "delete", "statefulset", "kvstore")
        wait_for(lambda: len(json.loads(sd.read_text())) == 1, what="kvstore's target to go")
    finally:
        assert sb.stop() == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_apps_run_in_as_many_app_hosts_as_asked(tmp_path, workers):
    import psutil

    sb = start_sandbox(tmp_path, "--app-workers", str(workers))
    try:
        hosts = psutil.Process(sb.pid).children()
        assert len(hosts) == workers
        apply_lab(sb)  # splitdim and kvstore: two server apps, one per host when there are two
        base = lb_base(sb)
        r = httpx.post(f"{base}/api/transfer", json={"sender": "a", "receiver": "b", "amount": 3}, timeout=5)
        assert r.status_code == 200
        assert httpx.get(f"{base}/api/clear", timeout=5).json() == [{"sender": "b", "receiver": "a", "amount": 3}]
        if workers:
            # Each host serves one app now: each listens on a pod's private address.
            listening = [[c for c in h.net_connections("tcp") if c.status == psutil.CONN_LISTEN] for h in hosts]
            assert all(len(ls) == 1 for ls in listening), listening
            sb.kubectl("-n", NS, "delete", "statefulset", "kvstore", "--wait=true")
            wait_for(
                lambda: (
                    sum(len([c for c in h.net_connections("tcp") if c.status == psutil.CONN_LISTEN]) for h in hosts)
                    == 1
                ),
                what="kvstore's app stopped in its host",
            )
    finally:
        assert sb.stop() == 0
    if workers:
        assert all(not h.is_running() or h.status() == psutil.STATUS_ZOMBIE for h in hosts)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--app-workers", "-1"], {}, "--app-workers must be 0 or more"),
        ([], {"SANDBOX_APP_WORKERS": "many"}, "SANDBOX_APP_WORKERS must be a whole number"),
    ],
)
def test_bad_app_worker_counts_are_refused_with_a_message(tmp_path, args, env, message):
    import os
    import subprocess
    import sys

    kubeconfig = tmp_path / "kubeconfig"
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--kubeconfig", str(kubeconfig), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not kubeconfig.exists()
