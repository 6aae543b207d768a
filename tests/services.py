"""Exit 0 when the real services for the second test pass (PostgreSQL and Redis) answer, else 1.

`make test` runs the suite with the embedded defaults (SQLite, a private Redis), then runs the parts that
touch the database and Redis again against real PostgreSQL and Redis when this says they are there.
"""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    urls = [os.environ.get("TEST_DATABASE_URL", ""), os.environ.get("TEST_REDIS_URL", "")]
    sys.exit(0 if all(u and reachable(u) for u in urls) else 1)
