"""Shared fixtures: one real sandbox cluster per test session, reached like any cluster.

The sandbox runs as its own process (`python -m sandbox`, the command users run); tests talk to it
through the kubeconfig it writes, with the official `kubernetes` client and the pinned `kubectl`.
Each test that changes the cluster gets its own namespace.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox import process
from sandbox.process import SandboxProcess


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> object:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # the condition may raise until it holds (e.g. 404 before creation)
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: last error {last_error!r}")


def start_sandbox(workdir: Path, *extra: str, state_dir: Path | None = None) -> SandboxProcess:
    return process.start(workdir, *extra, state_dir=state_dir)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    workdir = tmp_path_factory.mktemp("sandbox")
    sb = start_sandbox(workdir, "--prometheus-sd", str(workdir / "prometheus-targets.json"))
    yield sb
    code = sb.stop()
    assert code == 0, f"sandbox did not stop cleanly ({code}):\n{sb.log_path.read_text()[-3000:]}"


@pytest.fixture(scope="session")
def api_client(sandbox: SandboxProcess):
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    yield client
    client.close()


@pytest.fixture(scope="session")
def dyn(api_client, tmp_path_factory: pytest.TempPathFactory):
    from kubernetes.dynamic import DynamicClient

    return DynamicClient(api_client, cache_file=str(tmp_path_factory.mktemp("discovery") / "cache.json"))


@pytest.fixture
def namespace(dyn) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    ns_api = dyn.resources.get(api_version="v1", kind="Namespace")
    ns_api.create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    ns_api.delete(name=name)


@pytest.fixture(scope="session")
def prometheus(sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus (Debian's package) scraping every proxy of the session's sandbox each second."""
    from tests.prometheus import start_prometheus

    server = start_prometheus(
        tmp_path_factory.mktemp("prometheus"), sandbox.kubeconfig.parent / "prometheus-targets.json"
    )
    yield server.url
    server.stop()


# Stack fixtures (a Celery worker and uvicorn around the sandbox; a file-backed SQLite test database).
from tests.stack import (  # noqa: E402,F401
    celery_worker,
    console_server,
    django_db_modify_db_settings,
    stack_dir,
    stack_env,
    static_root,
)
