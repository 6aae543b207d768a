"""pytest setup for the graph: Django settings with a private runtime directory, and the graph settings.

As in tests/console, the environment is prepared at import time, before settings.py is read. Tests
that need the cluster use the session's sandbox (tests/conftest.py); the others get a cluster address
that refuses connections, so nothing here depends on a machine's ~/.kube/config.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import django_env
from tests.console.support import write_kubeconfig
from tests.django_env import plain_static_files  # noqa: F401 (an autouse fixture)

django_env.prepare("mc-graph-test-")


def pytest_configure(config: pytest.Config) -> None:
    django_env.setup_django()


def pytest_unconfigure(config: pytest.Config) -> None:
    django_env.teardown()


@pytest.fixture(scope="session")
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening) for the whole session."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _graph_settings(settings, closed_port: int, tmp_path: Path) -> None:
    """Fast refreshes, no Prometheus, and a cluster that is down unless a test points at the sandbox."""
    settings.KUBECONFIG = str(write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{closed_port}"))
    settings.PROMETHEUS_URL = ""
    settings.GRAPH_REFRESH_SECONDS = 0.5
    settings.GRAPH_SCRAPE_TARGETS_FILE = ""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class People:
    """A class with a student and its instructor, and a second class with its own student and instructor."""

    student: object
    instructor: object
    other_student: object
    other_instructor: object
    namespace: str  # the student's
    other_namespace: str


@pytest.fixture
def people(transactional_db) -> People:
    from django.contrib.auth import get_user_model

    from classroom.models import Classroom, Membership, StudentNamespace

    users = get_user_model().objects
    tag = uuid.uuid4().hex[:8]
    made = {role: users.create_user(f"{role}-{tag}", password="x") for role in ("s1", "i1", "s2", "i2")}
    for index, (student, instructor) in enumerate((("s1", "i1"), ("s2", "i2"))):
        classroom = Classroom.objects.create(name=f"Class {index} {tag}", slug=f"class-{index}-{tag}")
        Membership.objects.create(user=made[student], classroom=classroom, role=Membership.Role.STUDENT)
        Membership.objects.create(user=made[instructor], classroom=classroom, role=Membership.Role.INSTRUCTOR)
        StudentNamespace.objects.create(user=made[student], name=f"{student}-{tag}")
    return People(made["s1"], made["i1"], made["s2"], made["i2"], f"s1-{tag}", f"s2-{tag}")
