"""Fixtures for the traffic tests: Django set up as for the console tests, a private Redis key prefix per
test, the echo target, worker processes and a live ASGI server.

The environment is prepared at import time, before settings are read (see tests/console/conftest.py,
which does the same when the whole suite runs; whichever conftest comes first owns the runtime dir).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import django_env
from tests.django_env import plain_static_files, traffic_prefix  # noqa: F401 (fixtures)

from .support import REPO, EchoTarget, LiveServer, WorkerProcess

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
django_env.prepare("mc-traffic-test-")


def pytest_configure(config: pytest.Config) -> None:
    django_env.setup_django()


def pytest_unconfigure(config: pytest.Config) -> None:
    django_env.teardown()


@pytest.fixture
def prefix(traffic_prefix: str) -> str:  # noqa: F811 (uses the imported fixture)
    """A Redis key prefix of this test's own (tests/django_env.py); its keys are deleted after."""
    return traffic_prefix


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
