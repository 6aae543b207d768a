"""Environment parsing and the settings module as a whole."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from meshconsole.config import (
    celery_broker_url,
    database_config,
    env_bool,
    env_int,
    env_list,
    load_or_create_secret_key,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw", ["1", "true", "Yes", " on "])
def test_env_bool_true(raw: str) -> None:
    assert env_bool("X", False, {"X": raw}) is True


@pytest.mark.parametrize("raw", ["0", "false", "NO", "off", ""])
def test_env_bool_false(raw: str) -> None:
    assert env_bool("X", True, {"X": raw}) is False


def test_env_bool_default_and_typo() -> None:
    assert env_bool("X", True, {}) is True
    with pytest.raises(ImproperlyConfigured, match="X='ture'"):
        env_bool("X", False, {"X": "ture"})


def test_env_list_and_int() -> None:
    assert env_list("H", ["a"], {}) == ["a"]
    assert env_list("H", ["a"], {"H": " x.example, ,127.0.0.1 "}) == ["x.example", "127.0.0.1"]
    assert env_int("N", 5, {"N": "12"}) == 12
    assert env_int("N", 5, {"N": " "}) == 5
    with pytest.raises(ImproperlyConfigured):
        env_int("N", 5, {"N": "ten"})


def test_secret_key_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    first = load_or_create_secret_key(path)
    assert len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret_key(path) == first
    assert load_or_create_secret_key(tmp_path / "other") != first


def test_empty_secret_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("\n")
    with pytest.raises(ImproperlyConfigured, match="empty"):
        load_or_create_secret_key(path)


def test_database_url_postgres(tmp_path: Path) -> None:
    config = database_config("postgres://mc:s3cret@db.internal:5433/console", tmp_path / "db.sqlite3", 60)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("console", "mc", "s3cret")
    assert (config["HOST"], config["PORT"]) == ("db.internal", 5433)
    assert config["CONN_MAX_AGE"] == 60 and config["CONN_HEALTH_CHECKS"] is True
    assert not (tmp_path / "db.sqlite3").exists()


def test_database_default_is_sqlite_in_var(tmp_path: Path) -> None:
    config = database_config(None, tmp_path / "var" / "db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "var" / "db.sqlite3")
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert (tmp_path / "var").is_dir()


def test_database_url_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="'nosql'"):
        database_config("nosql://host/db", tmp_path / "db.sqlite3")


def test_celery_broker_url() -> None:
    assert celery_broker_url("unix:///srv/var/redis/redis.sock?db=0") == (
        "redis+socket:///srv/var/redis/redis.sock?virtual_host=0"
    )
    assert celery_broker_url("unix:///s.sock") == "redis+socket:///s.sock?virtual_host=0"
    assert celery_broker_url("redis://127.0.0.1:6379/15") == "redis://127.0.0.1:6379/15"


def test_running_settings_follow_the_environment() -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if os.environ.get("DATABASE_URL"):
        assert engine == "django.db.backends.postgresql"
    else:
        assert engine == "django.db.backends.sqlite3"
    assert settings.REDIS_URL == (os.environ.get("REDIS_URL") or settings.REDIS_URL)
    if not os.environ.get("REDIS_URL"):
        assert settings.REDIS_URL.startswith("unix://")
        assert settings.CELERY_BROKER_URL.startswith("redis+socket://")
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    assert host["socket_timeout"] is None and host["max_connections"] >= 1000


def _settings_in_subprocess(env: dict[str, str]) -> dict:
    """Import the real settings module in a fresh interpreter with exactly `env` on top of PATH."""
    script = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'db': s.DATABASES['default'], "
        "'secret': s.SECRET_KEY, 'secure': s.SESSION_COOKIE_SECURE, 'csrf_secure': s.CSRF_COOKIE_SECURE, "
        "'broker': s.CELERY_BROKER_URL, 'acks_late': s.CELERY_TASK_ACKS_LATE, "
        "'limit': s.CELERY_TASK_TIME_LIMIT, 'visibility': s.CELERY_BROKER_TRANSPORT_OPTIONS, "
        "'storage': s.STORAGES['staticfiles']['BACKEND'], 'kubeconfig': s.KUBECONFIG}, default=str))"
    )
    base = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "meshconsole.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_settings_module_production_environment(tmp_path: Path) -> None:
    values = _settings_in_subprocess(
        {
            "MESHCONSOLE_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://mc:pw@db.internal:5432/console",
            "REDIS_URL": "redis://redis.internal:6379/3",
            "SECRET_KEY": "from-the-environment",
            "ALLOWED_HOSTS": "console.example.org",
            "KUBECONFIG": "/etc/meshconsole/kubeconfig",
        }
    )
    assert values["debug"] is False
    assert values["hosts"] == ["console.example.org"]
    assert values["db"]["ENGINE"] == "django.db.backends.postgresql" and values["db"]["HOST"] == "db.internal"
    assert values["secret"] == "from-the-environment"
    assert values["secure"] is True and values["csrf_secure"] is True
    assert values["broker"] == "redis://redis.internal:6379/3"
    assert values["acks_late"] is True
    assert values["limit"] < values["visibility"]["visibility_timeout"]
    assert values["storage"] == "servestatic.storage.CompressedManifestStaticFilesStorage"
    assert values["kubeconfig"] == "/etc/meshconsole/kubeconfig"
    assert not (tmp_path / "secret_key").exists()  # the environment's key wins; nothing generated


def test_settings_module_laptop_defaults(tmp_path: Path) -> None:
    env = {"MESHCONSOLE_VAR_DIR": str(tmp_path), "DEBUG": "1", "REDIS_URL": "redis://127.0.0.1:1/0"}
    values = _settings_in_subprocess(env)
    assert values["debug"] is True
    assert values["db"]["NAME"] == str(tmp_path / "db.sqlite3")
    assert values["secret"] == (tmp_path / "secret_key").read_text().strip()
    assert values["secure"] is False  # DEBUG on a laptop over plain HTTP
    assert values["storage"] == "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert _settings_in_subprocess(env)["secret"] == values["secret"]
