"""pytest setup for the dashboard and class management: Django as in tests/labsteps, and a small world of
two classes (A and B), each with an instructor and students."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import django_env
from tests.django_env import plain_static_files, traffic_prefix, unreachable_cluster  # noqa: F401 (fixtures)

django_env.prepare("mc-dashtest-")


def pytest_configure(config: pytest.Config) -> None:
    django_env.setup_django()


def pytest_unconfigure(config: pytest.Config) -> None:
    django_env.teardown()


@pytest.fixture(autouse=True)
def _dashboard_settings(settings, unreachable_cluster: Path, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    settings.KUBECONFIG = str(unreachable_cluster)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    settings.STATIC_ROOT.mkdir()


@dataclass
class World:
    a: Any  # Classroom
    b: Any
    teacher_a: Any
    teacher_b: Any
    students_a: list[Any]
    students_b: list[Any]


def make_class(students: int = 2, password: str = "pw-for-tests-1") -> tuple[Any, Any, list[Any]]:
    from classroom.models import Membership
    from classroom.roster import RosterEntry, apply_roster

    tag = uuid.uuid4().hex[:8]
    entries = [RosterEntry(f"t{tag}", password, "instructor", "test")]
    entries += [RosterEntry(f"s{tag}-{i}", password, "student", "test") for i in range(students)]
    result = apply_roster(f"class {tag}", entries)
    room = result.classroom
    teacher = room.memberships.get(role=Membership.Role.INSTRUCTOR).user
    pupils = [m.user for m in room.memberships.filter(role=Membership.Role.STUDENT).order_by("user__username")]
    return room, teacher, pupils


@pytest.fixture
def world(db) -> World:
    a, teacher_a, students_a = make_class()
    b, teacher_b, students_b = make_class(1)
    return World(a, b, teacher_a, teacher_b, students_a, students_b)
