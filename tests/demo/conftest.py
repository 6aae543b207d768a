"""pytest setup for the demo's tests: Django with a private runtime directory (as tests/labsteps), a cluster
that refuses connections unless a test asks for the sandbox, and a class with its people."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import django_env
from tests.console.support import write_kubeconfig
from tests.django_env import plain_static_files, traffic_prefix  # noqa: F401 (fixtures)

django_env.prepare("mc-demo-test-")


def pytest_configure(config: pytest.Config) -> None:
    django_env.setup_django()


def pytest_unconfigure(config: pytest.Config) -> None:
    django_env.teardown()


@pytest.fixture(scope="session")
def closed_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _demo_settings(settings, closed_port: int, tmp_path: Path) -> None:
    settings.KUBECONFIG = str(write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{closed_port}"))
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.TRAFFIC_KEY_PREFIX = f"demo-test-{uuid.uuid4().hex[:8]}"


@dataclass
class People:
    """Class A: instructor, co-instructor, student. Class B: its own instructor and student."""

    instructor: object
    co_instructor: object
    student: object
    other_instructor: object
    other_student: object
    slug: str
    other_slug: str


@pytest.fixture
def people(transactional_db) -> People:
    from django.contrib.auth import get_user_model

    from classroom.models import Classroom, Membership, StudentNamespace

    users = get_user_model().objects
    tag = uuid.uuid4().hex[:8]
    made = {role: users.create_user(f"{role}-{tag}", password="x") for role in ("i1", "c1", "s1", "i2", "s2")}
    a = Classroom.objects.create(name=f"A {tag}", slug=f"a-{tag}")
    b = Classroom.objects.create(name=f"B {tag}", slug=f"b-{tag}")
    for user, classroom, role in (
        ("i1", a, Membership.Role.INSTRUCTOR),
        ("c1", a, Membership.Role.INSTRUCTOR),
        ("s1", a, Membership.Role.STUDENT),
        ("i2", b, Membership.Role.INSTRUCTOR),
        ("s2", b, Membership.Role.STUDENT),
    ):
        Membership.objects.create(user=made[user], classroom=classroom, role=role)
    for student in ("s1", "s2"):
        StudentNamespace.objects.create(user=made[student], name=f"mc-{student}-{tag}")
    return People(made["i1"], made["c1"], made["s1"], made["i2"], made["s2"], a.slug, b.slug)
