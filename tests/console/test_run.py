"""`python -m meshconsole.run` (what `make run` calls), started for real as a subprocess.

Each start gets a free port and a private runtime directory, and SQLite, the built-in Redis and its own
sandbox whatever the environment says, so the checks below see exactly what a fresh machine sees.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from meshconsole import redis_embedded
from meshconsole.run import Options, StartError, Supervisor, url_for, worker_concurrency

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120.0  # a loaded CI machine; a laptop needs about ten seconds
STOP_TIMEOUT = 60.0
READY = re.compile(r"^MeshConsole ready at (\S+)$")
CREDENTIAL = re.compile(r"^\s*(instructor|student)\s+(\S+)\s+(\S+)\s*$")
STARTED = re.compile(r"^Started the (.+?) \(pid (\d+)")
# Settings from the developer's environment that would point the console elsewhere.
FOREIGN = ("DATABASE_URL", "REDIS_URL", "KUBECONFIG", "HOST", "DEBUG", "ALLOWED_HOSTS", "SECURE_COOKIES")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class ConsoleRun:
    """One `python -m meshconsole.run`, its output collected line by line as it comes."""

    def __init__(self, var_dir: Path, port: int, **env: str) -> None:
        self.var_dir = var_dir
        self.port = port
        child_env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
        child_env.update(
            PORT=str(port),
            MESHCONSOLE_VAR_DIR=str(var_dir),
            STATIC_ROOT=str(var_dir.parent / "static"),
            CELERY_CONCURRENCY="2",
            **env,
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "meshconsole.run"],
            cwd=REPO,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def find(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        return next((m for m in map(pattern.match, list(self.lines)) if m), None)

    def wait_ready(self) -> str:
        def ready() -> re.Match[str] | None:
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"run.py exited ({self.process.returncode}) before ready:\n{self.output}")
            return self.find(READY)

        match = wait_until(ready, READY_TIMEOUT, "the ready line")
        assert isinstance(match, re.Match)
        return match.group(1)

    def wait_exit(self) -> int:
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"run.py did not exit within {STOP_TIMEOUT:.0f}s:\n{self.output}") from None
        self._reader.join(10)
        return code

    def started_pids(self) -> dict[str, int]:
        return {m.group(1): int(m.group(2)) for m in map(STARTED.match, list(self.lines)) if m}

    def credentials(self) -> dict[str, str]:
        return {m.group(2): m.group(3) for m in map(CREDENTIAL.match, self.lines) if m}

    def process_tree(self) -> list[psutil.Process]:
        """run.py's descendants plus the built-in Redis (a daemon, so not a descendant)."""
        tree = psutil.Process(self.process.pid).children(recursive=True)
        redis_pid = redis_embedded.running_pid(self.var_dir)
        return tree + ([psutil.Process(redis_pid)] if redis_pid else [])

    def close(self) -> None:
        """Last resort after a failed test: nothing of ours may outlive it."""
        if self.process.poll() is None:
            leftovers = self.process_tree()
            self.process.kill()
            self.process.wait(10)
            for leftover in leftovers:
                try:
                    leftover.kill()
                except psutil.Error:
                    pass
        redis_embedded.stop(self.var_dir)


def gone(process: psutil.Process) -> bool:
    """Exited: no such process any more, or a zombie nobody has reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def processes_using(var_dir: Path) -> list[psutil.Process]:
    """Live processes started for `var_dir`: run.py hands MESHCONSOLE_VAR_DIR to everything it starts."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() != psutil.STATUS_ZOMBIE and process.environ().get("MESHCONSOLE_VAR_DIR") == str(
                var_dir
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def log_in(base: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        data = {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
        return client.post("/accounts/login/", data=data)


@dataclass
class FirstStart:
    var_dir: Path
    url: str
    port: int
    output: str
    login_page: httpx.Response
    logged_in: httpx.Response
    credentials: dict[str, str]
    tree: list[psutil.Process]
    exit_code: int


@pytest.fixture(scope="module")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstStart]:
    """A first start on a fresh runtime directory: serve, log in as the demo teacher, then Ctrl-C."""
    var_dir = tmp_path_factory.mktemp("run") / "var"
    port = free_port()
    run = ConsoleRun(var_dir, port)
    try:
        url = run.wait_ready()
        login_page = httpx.get(f"{url}accounts/login/", timeout=10)
        credentials = run.credentials()
        logged_in = log_in(url, "teacher", credentials.get("teacher", "?"))
        tree = run.process_tree()
        run.process.send_signal(signal.SIGINT)
        code = run.wait_exit()
        yield FirstStart(var_dir, url, port, run.output, login_page, logged_in, credentials, tree, code)
    finally:
        run.close()


@pytest.mark.slow
def test_first_start_serves_the_console_and_prints_how_to_log_in(first_start: FirstStart) -> None:
    assert first_start.url == f"http://127.0.0.1:{first_start.port}/"
    assert f"MeshConsole ready at {first_start.url}" in first_start.output.splitlines()
    assert first_start.login_page.status_code == 200
    assert 'name="password"' in first_start.login_page.text
    assert set(first_start.credentials) == {"teacher", "student1", "student2"}, first_start.output
    # Logging in works over the plain HTTP this server speaks (session cookies must not be Secure-only).
    assert first_start.logged_in.status_code == 200
    assert first_start.logged_in.url.path != "/accounts/login/", first_start.logged_in.text[:500]
    assert (first_start.var_dir / "log" / "web.log").read_text()


@pytest.mark.slow
def test_ctrl_c_stops_every_child_and_the_builtin_redis(first_start: FirstStart) -> None:
    assert first_start.exit_code == 0, first_start.output
    assert len(first_start.tree) >= 4  # sandbox, worker (+ its pool), web, Redis
    left = [p for p in first_start.tree if not gone(p)]
    assert not left, f"still running after Ctrl-C: {left}"
    assert redis_embedded.running_pid(first_start.var_dir) is None
    assert processes_using(first_start.var_dir) == []
    assert first_start.output.splitlines()[-1] == "MeshConsole stopped."


@pytest.mark.slow
def test_second_start_reuses_state_and_a_dead_worker_stops_everything(first_start: FirstStart) -> None:
    run = ConsoleRun(first_start.var_dir, free_port())
    try:
        run.wait_ready()
        assert run.credentials() == first_start.credentials
        assert "The demo class exists" in run.output
        with sqlite3.connect(first_start.var_dir / "db.sqlite3") as db:
            assert db.execute("SELECT COUNT(*) FROM classroom_classroom").fetchone() == (1,)

        # A second supervisor on the same runtime directory refuses to start and changes nothing.
        intruder = ConsoleRun(first_start.var_dir, free_port())
        assert intruder.wait_exit() == 1
        assert "MeshConsole is already running" in intruder.output

        tree = run.process_tree()
        worker = run.started_pids()["Celery worker"]
        os.kill(worker, signal.SIGKILL)
        assert run.wait_exit() == 1
        assert "The Celery worker stopped unexpectedly (killed by SIGKILL)" in run.output
        assert f"Last lines of {first_start.var_dir / 'log' / 'worker.log'}:" in run.output
        assert not [p for p in tree if not gone(p)]
        assert redis_embedded.running_pid(first_start.var_dir) is None
        assert processes_using(first_start.var_dir) == []
    finally:
        run.close()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="children die with run.py through Linux's prctl")
def test_a_killed_supervisor_takes_its_children_along_and_the_next_start_cleans_up(
    first_start: FirstStart,
) -> None:
    var_dir = first_start.var_dir
    crashed = ConsoleRun(var_dir, free_port())
    restart: ConsoleRun | None = None
    try:
        crashed.wait_ready()
        started = crashed.started_pids()
        (sandbox,) = [p for p in crashed.process_tree() if "sandbox" in p.cmdline()]
        crashed.process.kill()
        crashed.wait_exit()
        workers = [psutil.Process(started["Celery worker"]), psutil.Process(started["web server"])]
        wait_until(lambda: all(gone(p) for p in workers), 30, "the worker and web server to follow run.py")
        assert not gone(sandbox)  # sandbox.process starts it without a parent-death signal

        # The next start stops what is left, and Ctrl-C in the middle of starting still stops everything.
        restart = ConsoleRun(var_dir, free_port())
        wait_until(lambda: "left running by an earlier start" in restart.output, 30, "the leftover notice")
        wait_until(lambda: gone(sandbox), 30, "the leftover sandbox to stop")
        restart.process.send_signal(signal.SIGINT)
        assert restart.wait_exit() == 0, restart.output
        assert "Stopping the sandbox cluster left running by an earlier start." in restart.output
        assert processes_using(var_dir) == []
        assert redis_embedded.running_pid(var_dir) is None
    finally:
        crashed.close()
        if restart is not None:
            restart.close()


def test_unreachable_kubeconfig_is_explained_before_anything_starts(
    unreachable_kubeconfig: Path, closed_port: int, tmp_path: Path
) -> None:
    run = ConsoleRun(tmp_path / "var", free_port(), KUBECONFIG=str(unreachable_kubeconfig))
    try:
        assert run.wait_exit() == 1
        assert f"Cannot reach the cluster at http://127.0.0.1:{closed_port}" in run.output
        assert "unset KUBECONFIG to use the built-in sandbox" in run.output
        assert "Started the" not in run.output
        assert redis_embedded.running_pid(tmp_path / "var") is None
    finally:
        run.close()


def test_port_in_use_is_explained(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = ConsoleRun(tmp_path / "var", port)
        try:
            assert run.wait_exit() == 1
        finally:
            run.close()
    assert f"Cannot listen on 127.0.0.1 port {port}" in run.output
    assert f"PORT={port + 1} make run" in run.output
    assert redis_embedded.running_pid(tmp_path / "var") is None


def test_noteworthy_child_lines_reach_the_terminal_with_the_childs_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = Options("127.0.0.1", 8000, tmp_path)
    options.log_dir.mkdir()
    supervisor = Supervisor(options, dict(os.environ))
    script = "print('INFO all is well'); print('WARNING disk almost full'); print('ValueError: bad input')"
    child = supervisor.launch("probe", [sys.executable, "-c", script])
    output = supervisor.finish(child, "the probe")
    shown = capsys.readouterr().out.splitlines()
    assert "INFO all is well" in output  # the log keeps everything ...
    assert shown == ["   probe | WARNING disk almost full", "   probe | ValueError: bad input"]  # ... the terminal less


def test_a_failed_step_names_itself_with_its_log(tmp_path: Path) -> None:
    options = Options("127.0.0.1", 8000, tmp_path)
    options.log_dir.mkdir()
    supervisor = Supervisor(options, dict(os.environ))
    child = supervisor.launch("broken", [sys.executable, "-c", "import sys; print('no database'); sys.exit(3)"])
    with pytest.raises(StartError) as failure:
        supervisor.finish(child, "Setting up the database")
    assert str(failure.value).startswith("Setting up the database failed (exit status 3).")
    assert "  | no database" in str(failure.value)
    assert supervisor.children == []


def test_worker_concurrency_follows_the_environment_or_the_machine() -> None:
    assert worker_concurrency({"CELERY_CONCURRENCY": "3"}) == 3
    assert 2 <= worker_concurrency({}) <= 16
    with pytest.raises(StartError, match="CELERY_CONCURRENCY"):
        worker_concurrency({"CELERY_CONCURRENCY": "many"})


def test_options_from_the_environment(tmp_path: Path) -> None:
    options = Options.from_env({"HOST": "0.0.0.0", "PORT": "8123", "MESHCONSOLE_VAR_DIR": str(tmp_path)})
    assert (options.url, options.var_dir, options.log_dir) == ("http://127.0.0.1:8123/", tmp_path, tmp_path / "log")
    assert url_for("::1", 8000) == "http://[::1]:8000/"
    with pytest.raises(StartError, match="PORT='eighty'"):
        Options.from_env({"PORT": "eighty"})
