"""Fixtures for the traffic tests: Django set up as for the console tests, a private Redis key prefix per
test, the echo target, worker processes and a live ASGI server.

The environment is prepared at import time, before settings are read (see tests/console/conftest.py,
which does the same when the whole suite runs; whichever conftest comes first owns the runtime dir).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import django_env
from tests.django_env import plain_static_files  # noqa: F401 (an autouse fixture)

from .support import REPO, EchoTarget, LiveServer, WorkerProcess

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
django_env.prepare("mc-traffic-test-")


def pytest_configure(config: pytest.Config) -> None:
    django_env.setup_django()


def pytest_unconfigure(config: pytest.Config) -> None:
    django_env.teardown()


@pytest.fixture
def prefix(settings) -> Iterator[str]:
    """A Redis key prefix of this test's own (settings and workers use it); its keys are deleted after."""
    from traffic import control

    name = f"traffic-test-{uuid.uuid4().hex[:10]}"
    settings.TRAFFIC_KEY_PREFIX = name
    yield name
    r = control.client()
    for key in r.scan_iter(f"{name}:*"):
        r.delete(key)


@pytest.fixture
def echo() -> Iterator[EchoTarget]:
    target = EchoTarget()
    yield target
    target.stop()


@pytest.fixture
def worker_env(prefix: str, settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "meshconsole.settings",
            "REDIS_URL": settings.REDIS_URL,
            "TRAFFIC_KEY_PREFIX": prefix,
            "LOG_LEVEL": "INFO",
        }
    )
    return env


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(worker_env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def asgi_server(transactional_db) -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.stop()
