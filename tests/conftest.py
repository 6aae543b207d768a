"""Shared fixtures: one real sandbox cluster per test session, reached like any cluster.

The sandbox runs as its own process (`python -m sandbox`, the command users run); tests talk to it
through the kubeconfig it writes, with the official `kubernetes` client and the pinned `kubectl`.
Each test that changes the cluster gets its own namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")


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


@dataclass
class SandboxProcess:
    process: subprocess.Popen
    kubeconfig: Path
    state_dir: Path | None
    log_path: Path
    cache_dir: Path

    @property
    def server(self) -> str:
        import yaml

        return yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(5)
        return self.process.returncode

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.cache_dir)}
        result = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result


def start_sandbox(workdir: Path, *extra: str, state_dir: Path | None = None, timeout: float = 20.0) -> SandboxProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    log_path = workdir / "sandbox.log"
    args = [sys.executable, "-m", "sandbox", "--kubeconfig", str(kubeconfig), *extra]
    if state_dir is not None:
        args += ["--state-dir", str(state_dir)]
    log = log_path.open("w")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    sb = SandboxProcess(proc, kubeconfig, state_dir, log_path, workdir / "kube-cache")

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited early:\n{log_path.read_text()}")
        return kubeconfig.exists()

    try:
        wait_for(ready, timeout, what="the sandbox to write its kubeconfig")
    except Exception:
        sb.stop()
        raise
    return sb


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    sb = start_sandbox(tmp_path_factory.mktemp("sandbox"))
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
