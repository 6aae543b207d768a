"""Django for the console's test packages: the settings module, a private runtime directory, set-up and
tear-down, shared by the conftests of tests/console, labsteps, meshgraph and traffic.

`prepare()` runs when a conftest is imported, because settings.py reads MESHCONSOLE_VAR_DIR when it is
imported and pytest-django reads DJANGO_SETTINGS_MODULE lazily. The developer's var/ (database, secret
key, embedded Redis) is never touched: the session gets a directory of its own, removed at the end.
DATABASE_URL and REDIS_URL are used as they are, so the same tests run on SQLite or PostgreSQL and on the
embedded or a shared Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_owned_var_dir: Path | None = None


def prepare(prefix: str = "mc-test-") -> None:
    global _owned_var_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshconsole.settings")
    if "MESHCONSOLE_VAR_DIR" not in os.environ:
        _owned_var_dir = Path(tempfile.mkdtemp(prefix=prefix))
        os.environ["MESHCONSOLE_VAR_DIR"] = str(_owned_var_dir)


def setup_django() -> None:
    """pytest-django sets Django up only when it saw the settings module before the conftests loaded,
    which is not so when the whole tests/ tree is collected; test modules import models."""
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def teardown() -> None:
    """Stop the embedded Redis the session started (if any) and drop the private runtime directory."""
    global _owned_var_dir
    if _owned_var_dir is None:
        return
    from meshconsole import redis_embedded

    redis_embedded.stop(_owned_var_dir)
    shutil.rmtree(_owned_var_dir, ignore_errors=True)
    _owned_var_dir = None


@pytest.fixture(autouse=True)
def plain_static_files(settings) -> None:
    """Pages render without `collectstatic`: the hashed-manifest storage is for production."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session")
def unreachable_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A kubeconfig whose server refuses connections (a loopback port bound for the session, never listening)."""
    from tests.console.support import write_kubeconfig

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        server = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", server)


@pytest.fixture
def traffic_prefix(settings) -> Iterator[str]:
    """A Redis key prefix of this test's own for the traffic app (settings and workers use it); its keys are
    deleted after, so runs never leak into another test or a later session on a shared Redis."""
    from traffic import control

    name = f"traffic-test-{uuid.uuid4().hex[:10]}"
    settings.TRAFFIC_KEY_PREFIX = name
    yield name
    r = control.client()
    for key in r.scan_iter(f"{name}:*"):
        r.delete(key)
