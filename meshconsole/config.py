"""Turn environment variables into setting values.

Kept apart from settings.py so that the parsing rules (what counts as true, how a DATABASE_URL becomes
a DATABASES entry, where the dev secret key lives) are plain functions the tests can call directly.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """Read a yes/no switch; a typo must fail loudly rather than silently mean 'off'."""
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_list(name: str, default: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """Read a comma-separated list, ignoring blanks around and between items."""
    raw = environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int(name: str, default: int, environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def load_or_create_secret_key(path: Path) -> str:
    """Return the development secret key stored at `path`, creating it once.

    The key is random per installation, so no usable key ever lives in the source tree. The file is
    created exclusively with mode 0600; if two processes race, the loser reads the winner's key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if not key:
            raise ImproperlyConfigured(f"{path} is empty; delete it to generate a new key") from None
        return key
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def database_config(url: str | None, sqlite_path: Path, conn_max_age: int = 0) -> dict[str, Any]:
    """The `DATABASES["default"]` entry: `url` when given (PostgreSQL in production), else SQLite.

    SQLite gets WAL and IMMEDIATE transactions because the web process and Celery workers write to it
    concurrently; without them writers hit "database is locked" under load.
    """
    if url:
        try:
            return dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=conn_max_age > 0)
        except ValueError as exc:
            raise ImproperlyConfigured(f"DATABASE_URL scheme not supported: {urlsplit(url).scheme!r}") from exc
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(sqlite_path),
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def celery_broker_url(redis_url: str) -> str:
    """Translate a redis-py URL into the form kombu expects.

    redis-py spells a unix socket `unix:///path?db=N`; kombu wants `redis+socket:///path` with the
    database as `virtual_host`. TCP URLs (`redis://`, `rediss://`) are understood by both as they are.
    """
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"
