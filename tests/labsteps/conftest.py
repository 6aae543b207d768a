"""pytest setup for the lab console's tests: Django settings, a private runtime directory, students.

Like tests/console, the environment is prepared at import time (settings.py reads it when imported)
and DATABASE_URL / REDIS_URL are used as they are, so the same tests run on SQLite or PostgreSQL and on
the embedded or a shared Redis. Whichever conftest runs first creates the runtime directory; the one
that created it removes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import django_env
from tests.django_env import plain_static_files, unreachable_cluster  # noqa: F401 (fixtures)

django_env.prepare("mc-labtest-")


def pytest_configure(config: pytest.Config) -> None:
    django_env.setup_django()


def pytest_unconfigure(config: pytest.Config) -> None:
    django_env.teardown()


@pytest.fixture(autouse=True)
def _lab_settings(settings, unreachable_cluster: Path, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    """Per test: no cluster unless a test asks for the sandbox, fast hashing, static files from the finders."""
    settings.KUBECONFIG = str(unreachable_cluster)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    settings.STATIC_ROOT.mkdir()


@pytest.fixture
def on_sandbox(settings, sandbox) -> object:
    """Point the in-process console at the session's sandbox cluster."""
    settings.KUBECONFIG = str(sandbox.kubeconfig)
    return sandbox


@pytest.fixture
def make_student(db) -> Callable[..., object]:
    """Create a student (with a class and a namespace row) or, with role="instructor", an instructor."""
    from classroom.roster import RosterEntry, apply_roster

    def make(role: str = "student", password: str = "pw-for-tests") -> object:
        name = f"u{uuid.uuid4().hex[:10]}"
        result = apply_roster(f"class {name}", [RosterEntry(name, password, role, "test")])
        return result.classroom.memberships.get().user

    return make
