"""The realtime stack as configured: channel layer, Celery broker and worker, ASGI app under uvicorn."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from asgiref.testing import ApplicationCommunicator
from celery.contrib.testing.worker import start_worker
from channels.layers import get_channel_layer
from django.conf import settings

from meshconsole.celery import app as celery_app
from meshconsole.routing import collect_websocket_urlpatterns

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.mark.asyncio
async def test_channel_layer_survives_idle_subscribers() -> None:
    """redis-py 8's default 5 s socket timeout would kill a subscriber idle this long."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = f"test.{uuid.uuid4().hex}"
    await layer.group_add(group, channel)
    receiving = asyncio.create_task(layer.receive(channel))
    done, _ = await asyncio.wait({receiving}, timeout=6.5)
    assert not done, "receive() ended while idle"
    await layer.group_send(group, {"type": "sample.batch", "text": "[1,2,3]"})
    message = await asyncio.wait_for(receiving, timeout=10)
    assert message == {"type": "sample.batch", "text": "[1,2,3]"}
    await layer.group_discard(group, channel)
    await layer.flush()


def test_celery_configuration() -> None:
    conf = celery_app.conf
    assert conf.broker_url == settings.CELERY_BROKER_URL
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]
    assert conf.task_soft_time_limit < conf.task_time_limit


@celery_app.task(name="tests.console.set_marker")
def set_marker(key: str) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(key, "done", ex=60)
    client.close()


def test_celery_worker_runs_task_from_the_broker() -> None:
    """A real worker thread consumes a task sent through the configured Redis broker."""
    key = f"meshconsole-test:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        set_marker.delay(key)
        assert wait_for(lambda: client.get(key) == b"done", timeout=15)
    client.close()


def test_websocket_routes_are_collected_from_app_routing_modules(tmp_path: Path, monkeypatch) -> None:
    live = tmp_path / "liveapp"
    live.mkdir()
    (live / "__init__.py").write_text("")
    (live / "routing.py").write_text(
        "from channels.generic.websocket import AsyncWebsocketConsumer\n"
        "from django.urls import path\n"
        "websocket_urlpatterns = [path('ws/live/', AsyncWebsocketConsumer.as_asgi())]\n"
    )
    (tmp_path / "plainapp").mkdir()
    (tmp_path / "plainapp" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    patterns = collect_websocket_urlpatterns(["plainapp", "liveapp"])
    assert [str(pattern.pattern) for pattern in patterns] == ["ws/live/"]


def http_scope(path: str) -> dict:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 50000),
    }


def websocket_scope(origin: bytes) -> dict:
    return {
        "type": "websocket",
        "path": "/ws/anything/",
        "raw_path": b"/ws/anything/",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"origin", origin)],
        "subprotocols": [],
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 50000),
    }


# channels.testing would need daphne installed, so the app is driven with asgiref's communicator.
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_asgi_http_and_websocket_origin_check() -> None:
    from meshconsole.asgi import application

    http = ApplicationCommunicator(application, http_scope("/accounts/login/"))
    await http.send_input({"type": "http.request", "body": b""})
    start = await http.receive_output(10)
    body = b""
    while True:
        chunk = await http.receive_output(10)
        body += chunk.get("body", b"")
        if not chunk.get("more_body"):
            break
    assert start["status"] == 200 and b"Log in" in body

    foreign = ApplicationCommunicator(application, websocket_scope(b"http://evil.example"))
    await foreign.send_input({"type": "websocket.connect"})
    assert (await foreign.receive_output(5))["type"] == "websocket.close"

    local = ApplicationCommunicator(application, websocket_scope(b"http://localhost"))
    await local.send_input({"type": "websocket.connect"})
    with pytest.raises(ValueError, match="No route found"):  # past the origin check; no app route yet
        await asyncio.wait_for(local.future, timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def production_server(tmp_path: Path) -> Iterator[str]:
    """uvicorn serving the ASGI app as in production: DEBUG off, collected, compressed static files."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "meshconsole.settings",
        "MESHCONSOLE_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "REDIS_URL": settings.REDIS_URL,
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "meshconsole.asgi:application", "--lifespan", "off"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: server.poll() is not None or _answers(base), timeout=30)
        assert server.poll() is None, "uvicorn exited"
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(base: str) -> bool:
    try:
        urllib.request.urlopen(base + "/accounts/login/", timeout=1)
        return True
    except (urllib.error.URLError, ConnectionError):
        return False


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_uvicorn_serves_pages_and_static_files(production_server: str) -> None:
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirected:
        opener.open(production_server + "/")
    assert redirected.value.code == 302 and redirected.value.headers["Location"] == "/accounts/login/?next=/"

    with urllib.request.urlopen(production_server + "/accounts/login/") as response:
        html = response.read().decode()
    assert "Log in" in html
    css_url = html.split('rel="stylesheet" href="')[1].split('"')[0]
    assert css_url.startswith("/static/css/console.") and css_url != "/static/css/console.css"  # hashed name

    request = urllib.request.Request(production_server + css_url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"].startswith("text/css")
        assert response.headers["Content-Encoding"] == "gzip"
        assert "immutable" in response.headers["Cache-Control"]
