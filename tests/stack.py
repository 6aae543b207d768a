"""Stack fixtures: the console's own processes, run against the session's sandbox and test database.

`celery_worker` is a real Celery worker (prefork, as in production) and `console_server` a real
uvicorn serving the ASGI app on a free loopback port. Both are subprocesses sharing with the test
process its test database (SQLite file or PostgreSQL), its Redis (embedded or REDIS_URL) and secret
key, and talking to the session's sandbox through its kubeconfig, so a test can create users in-process,
drive the console over HTTP and websockets, and look at the cluster with the kubernetes client.

Imported at the end of tests/conftest.py. Nothing here touches Django at import time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 90.0
# Short enough that a killed worker's attempt is taken over within seconds, long enough for a loaded CI box.
STALE_SECONDS = 5


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None, stack_dir: Path) -> None:
    """Keep an SQLite test database in a file (pytest-django's default is in memory), so that the stack's
    subprocesses can open it; it is the `db.sqlite3` of their runtime directory."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(stack_dir / "db.sqlite3")


def _database_env(stack_dir: Path) -> dict[str, str]:
    """Point a subprocess at the test database the test process uses (after pytest-django set it up)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        if Path(db["NAME"]) != stack_dir / "db.sqlite3":
            raise RuntimeError(f"the SQLite test database is {db['NAME']}, not a file the stack can share")
        return {"MESHCONSOLE_VAR_DIR": str(stack_dir)}  # settings.py finds var/db.sqlite3 there, WAL and all
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError(f"no stack support for {db['ENGINE']}")
    credentials = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    url = f"postgres://{credentials}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return {"DATABASE_URL": url, "MESHCONSOLE_VAR_DIR": str(stack_dir)}


@pytest.fixture(scope="session")
def stack_env(sandbox, django_db_setup: None, stack_dir: Path) -> dict[str, str]:
    """Environment for the stack's subprocesses."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KUBECONFIG")}
    env.update(
        _database_env(stack_dir),
        DJANGO_SETTINGS_MODULE="meshconsole.settings",
        KUBECONFIG=str(sandbox.kubeconfig),
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        SECURE_COOKIES="0",  # plain HTTP on loopback
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LAB_ATTEMPT_STALE_SECONDS=str(STALE_SECONDS),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    return env


@dataclass
class StackProcess:
    """A console process in its own process group (so its children go with it)."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def signal_group(self, sig: int) -> None:
        if self.running():
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash or an OOM kill would."""
        self.signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if not self.running():
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class CeleryWorker(StackProcess):
    def start(self) -> None:
        """Start the worker and return once it consumes tasks."""
        marker = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start()
        deadline = time.monotonic() + READY_TIMEOUT
        while " ready." not in self.log_path.read_text(errors="replace")[marker:]:
            if not self.running() or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def celery_worker(stack_env: dict[str, str], stack_dir: Path) -> Iterator[CeleryWorker]:
    """A real worker (prefork, two processes) consuming the console's queue; messages left over from
    tests that queued attempts without a worker are purged first. Per module, so that it never takes
    tasks meant for the in-process workers other test modules run on the same broker."""
    from meshconsole.celery import app

    app.control.purge()
    worker = CeleryWorker(
        "celery",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "meshconsole",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--hostname",
            f"labtest-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],  # fmt: skip
        stack_env,
        stack_dir / "celery.log",
    )
    worker.start()
    yield worker
    worker.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ConsoleServer:
    """The console served by uvicorn. `url` has no trailing slash."""

    url: str
    kubeconfig: Path
    process: StackProcess

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """`manage.py ARGS` against the console's database and cluster."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.process.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def new_student(self) -> tuple[str, str]:
        """A fresh student in a class of their own; (username, password)."""
        name = f"s{uuid.uuid4().hex[:10]}"
        password = uuid.uuid4().hex
        self.manage("createclass", f"class {name}", "--student", f"{name}:{password}")
        return name, password

    def login(self, username: str, password: str) -> httpx.Client:
        """An HTTP client logged in through the login form (which also creates the namespace)."""
        client = httpx.Client(base_url=self.url, timeout=30, trust_env=False)
        client.get("/accounts/login/")
        response = client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        )
        if response.status_code != 302:
            raise AssertionError(f"login of {username} failed: {response.status_code}")
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        return client


@pytest.fixture(scope="session")
def static_root(stack_env: dict[str, str], stack_dir: Path) -> Path:
    """Static files collected (hashed and compressed) once per session, as for production."""
    root = stack_dir / "static"
    env = {**stack_env, "STATIC_ROOT": str(root)}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=REPO, env=env, check=True, timeout=300
    )
    return root


@pytest.fixture(scope="module")
def console_server(stack_env: dict[str, str], static_root: Path, stack_dir: Path, sandbox) -> Iterator[ConsoleServer]:
    """uvicorn serving meshconsole.asgi with the collected static files, as in production."""
    env = {**stack_env, "STATIC_ROOT": str(static_root)}
    port = free_port()
    server = StackProcess(
        "uvicorn",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "meshconsole.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--no-access-log",
        ],  # fmt: skip
        env,
        stack_dir / "uvicorn.log",
    )
    server.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            if httpx.get(url + "/accounts/login/", timeout=2, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if not server.running() or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"uvicorn did not start:\n{server.log_tail()}")
        time.sleep(0.1)
    yield ConsoleServer(url, Path(sandbox.kubeconfig), server)
    server.stop()
