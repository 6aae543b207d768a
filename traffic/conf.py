"""The traffic app's settings: a Django setting of the same name wins, then the environment, then a default.

The environment fallback lets a worker process (and tests that start one) choose e.g. the Redis key
prefix without a settings module of its own.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Caps on the sum of stream rates (req/s) of one student's running runs, and of a whole class's.
    "TRAFFIC_MAX_RATE_PER_STUDENT": 200.0,
    "TRAFFIC_MAX_RATE_PER_CLASS": 2000.0,
    "TRAFFIC_MAX_STREAMS": 8,
    "TRAFFIC_MAX_BODY_BYTES": 64 * 1024,
    # Per-request deadline (s), in-flight cap per run, window length (s), HTTP transport.
    "TRAFFIC_TIMEOUT": 10.0,
    "TRAFFIC_MAX_IN_FLIGHT": 512,
    "TRAFFIC_WINDOW": 1.0,
    "TRAFFIC_TRANSPORT": "aiohttp",
    # Redis: key prefix, how much window history is kept, how long a stopped run stays visible.
    "TRAFFIC_KEY_PREFIX": "traffic",
    "TRAFFIC_HISTORY_SECONDS": 600,
    "TRAFFIC_STOPPED_TTL": 3600,
    # The chart's plotly.js: empty = the vendored basic bundle, "full" = the plotly package's, or a path (finders.py).
    "TRAFFIC_PLOTLY_JS": "",
}


def get(name: str) -> Any:
    default = DEFAULTS[name]
    value = getattr(settings, name, None)
    if value is None:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        value = raw
    return type(default)(value)
