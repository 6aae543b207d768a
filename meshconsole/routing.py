"""Websocket URL routing assembled from the installed apps' `routing.py` modules.

Each project app that serves websockets exposes `websocket_urlpatterns` in `<app>/routing.py`; the
project concatenates them so adding a live view never means editing the project's ASGI file. Only the
project's own apps (top-level directories of the repository) are looked at: third-party packages have
unrelated `routing` modules (channels.routing).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.urls import URLPattern, URLResolver


def collect_websocket_urlpatterns(app_modules: Iterable[str]) -> list[URLPattern | URLResolver]:
    """Concatenate `websocket_urlpatterns` of `<module>.routing` for each module that has one."""
    patterns: list[URLPattern | URLResolver] = []
    for module in app_modules:
        if importlib.util.find_spec(f"{module}.routing") is None:
            continue
        routing = importlib.import_module(f"{module}.routing")
        patterns.extend(routing.websocket_urlpatterns)
    return patterns


def websocket_urlpatterns() -> list[URLPattern | URLResolver]:
    """Patterns of the project's installed apps, in INSTALLED_APPS order."""
    root = Path(settings.BASE_DIR).resolve()
    return collect_websocket_urlpatterns(
        config.name for config in apps.get_app_configs() if Path(config.path).resolve().parent == root
    )
