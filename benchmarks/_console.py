"""The whole console as `make run` starts it, on a free port with its own runtime directory.

Used by the browser tests and the page benchmarks: `python -m meshconsole.run` brings up the embedded
Redis, migrations, the sandbox cluster, collected (compressed) static files, a Celery worker and
uvicorn, exactly as for a user. It runs in its own session and is stopped like Ctrl-C in a terminal.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0


class ConsoleDidNotStart(RuntimeError):
    pass


@dataclass(frozen=True)
class RunningConsole:
    url: str  # e.g. http://127.0.0.1:41234 (no trailing slash)
    var_dir: Path

    @property
    def kubeconfig(self) -> Path:
        """The sandbox cluster the console applies to."""
        return self.var_dir / "kubeconfig"

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """`manage.py ARGS` against this console's database and cluster."""
        env = {
            **_environment(self.var_dir),
            "KUBECONFIG": str(self.kubeconfig),
            "DJANGO_SETTINGS_MODULE": "meshconsole.settings",
        }
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, timeout=120
        )

    def new_student(self) -> tuple[str, str]:
        """A fresh student in a class of their own (so nobody shares a namespace); (username, password)."""
        name = f"b{uuid.uuid4().hex[:10]}"
        password = uuid.uuid4().hex
        self.manage("createclass", f"class {name}", "--student", f"{name}:{password}")
        return name, password


def _environment(var_dir: Path, port: int | None = None) -> dict[str, str]:
    # The console's own cluster (the sandbox) and settings, whatever the caller's environment says.
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "DJANGO_SETTINGS_MODULE")}
    env.update(MESHCONSOLE_VAR_DIR=str(var_dir), HOST="127.0.0.1", PYTHONUNBUFFERED="1")
    if port is not None:
        env["PORT"] = str(port)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def running_console(var_dir: Path) -> Iterator[RunningConsole]:
    """Start the console with its runtime files in `var_dir`; stop it (and all it started) on exit."""
    port = _free_port()
    log_path = var_dir / "console.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshconsole.run"],
            cwd=REPO,
            env=_environment(var_dir, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the Ctrl-C at the end reaches only it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _answers(url + "/accounts/login/"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ConsoleDidNotStart(f"exit status {process.poll()}:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield RunningConsole(url=url, var_dir=var_dir)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
