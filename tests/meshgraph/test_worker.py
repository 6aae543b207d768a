"""`python -m meshgraph.worker` end to end: a browser's websocket makes it poll, the graph arrives live."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from classroom.models import StudentNamespace
from tests.meshgraph.lab import KVSTORE_SVC, SPLITDIM, Traffic, connect, disconnect, index, rate
from tests.sandbox.test_kubectl import lab_manifest
from tests.sandbox.test_mesh import deploy_mesh_lab

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(sandbox, tmp_path):
    """The graph worker as `make run` starts it: its own process, embedded source, the sandbox's cluster."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "meshconsole.settings",
        "MESHCONSOLE_VAR_DIR": os.environ["MESHCONSOLE_VAR_DIR"],
        "REDIS_URL": settings.REDIS_URL,
        "KUBECONFIG": str(sandbox.kubeconfig),
        "GRAPH_REFRESH_SECONDS": "1",
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshgraph.worker"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60  # Django and the kubernetes client take seconds to import
    while "graph worker ready" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    assert process.returncode == 0, log.read_text()[-3000:]


async def next_graph(socket) -> dict:
    return json.loads((await socket.receive_output(15))["text"])["graph"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_worker_pushes_the_live_graph_and_a_fault_shows_within_seconds(sandbox, namespace, people, worker):
    await asyncio.to_thread(StudentNamespace.objects.filter(user=people.student).update, name=namespace)
    base = await asyncio.to_thread(deploy_mesh_lab, sandbox, namespace)
    traffic = Traffic(f"{base}/api/clear", 20).start()
    socket, answer = await connect(people.student, namespace)
    assert answer == "websocket.accept"
    try:
        deadline = time.monotonic() + 20
        while True:  # graphs arrive every second; wait for the store edge to carry the traffic
            graph = await next_graph(socket)
            edge = index(graph)[1].get((SPLITDIM, KVSTORE_SVC))
            if edge and rate(edge) > 10 and edge["healthStatus"] == "Healthy":
                break
            assert time.monotonic() < deadline, f"no healthy traffic on the store edge: {graph['status']}"
        assert graph["source"] == "embedded" and graph["status"] == {"ok": True, "message": ""}
        await asyncio.to_thread(
            sandbox.kubectl, "-n", namespace, "apply", "-f", "-", input=lab_manifest("fault.yaml", namespace)
        )
        applied = time.monotonic()
        while True:
            edge = index(await next_graph(socket))[1][(SPLITDIM, KVSTORE_SVC)]
            if edge["healthStatus"] in ("Degraded", "Failure"):
                break
            assert time.monotonic() - applied < 10, "the fault did not show on the store edge"
        assert edge["traffic"]["responses"]["500"]["flags"] == {"FI": edge["traffic"]["rates"]["httpPercentErr"]}
    finally:
        await disconnect(socket)
        await traffic.stop()
