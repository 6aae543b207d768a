"""pytest setup for the console: Django settings, a private runtime directory, an unreachable cluster.

The environment is prepared at import time because pytest-django reads DJANGO_SETTINGS_MODULE
lazily, when its first fixture runs, and settings.py reads MESHCONSOLE_VAR_DIR when imported.
DATABASE_URL and REDIS_URL are taken from the environment as they are, so the same tests run on
SQLite or PostgreSQL and on the embedded or a shared Redis.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import django_env

from .support import write_kubeconfig

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

django_env.prepare("mc-test-")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs a Kubernetes API server (fixture sandbox_kubeconfig)")
    django_env.setup_django()


def pytest_unconfigure(config: pytest.Config) -> None:
    django_env.teardown()


@pytest.fixture(scope="session")
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening, for the whole session."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def unreachable_kubeconfig(closed_port: int, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", f"http://127.0.0.1:{closed_port}")


@pytest.fixture(autouse=True)
def _console_settings(settings, unreachable_kubeconfig: Path, tmp_path: Path) -> None:
    """Per-test settings: a cluster that is down, fast password hashing, no collectstatic needed."""
    settings.KUBECONFIG = str(unreachable_kubeconfig)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.STATIC_ROOT = tmp_path / "staticfiles"  # ServeStatic warns when the directory is missing
    settings.STATIC_ROOT.mkdir()
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def sandbox_kubeconfig(sandbox) -> Path:
    """Kubeconfig of the session's sandbox cluster (the `sandbox` fixture of tests/conftest.py)."""
    return sandbox.kubeconfig
