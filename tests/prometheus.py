"""Starting a real Prometheus for tests: a generated config scraping the sandbox's file_sd targets."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from meshconsole.run import PROMETHEUS_CONFIG, free_port


@dataclass
class PrometheusServer:
    process: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_prometheus(workdir: Path, targets: Path, timeout: float = 30.0) -> PrometheusServer:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (Debian package `prometheus`; .ci/run installs it)")
    config = workdir / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(targets=targets))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"prometheus was not ready within {timeout}s:\n{log.read_text()[-3000:]}")


def query(url: str, promql: str, at: float | None = None) -> list[dict]:
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    r = httpx.get(f"{url}/api/v1/query", params=params, timeout=10)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]
