"""A staticfiles finder for plotly.js as the installed `plotly` package ships it (no copy in the repo, no CDN).

The package's data folder also holds a 5 MB widget bundle, datasets and templates that no page uses, so
rather than adding the whole folder to STATICFILES_DIRS this finder offers exactly one file, under
`vendor/plotly/plotly.min.js`. `collectstatic` then hashes and precompresses it like any other static
file (ServeStatic serves it compressed, cached for good), and in DEBUG the finders serve it directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor/plotly"
FILE = "plotly.min.js"
PATH = f"{PREFIX}/{FILE}"


def package_data() -> Path | None:
    """The `plotly` package's data folder, or None when plotly is not installed."""
    try:
        import plotly
    except ImportError:
        return None
    return Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        folder = package_data()
        self.storage: FileSystemStorage | None = None
        self.storages: dict[str, FileSystemStorage] = {}  # what other code reads from finders (ServeStatic)
        if folder is not None and (folder / FILE).is_file():
            self.storage = FileSystemStorage(location=str(folder))
            self.storage.prefix = PREFIX  # collectstatic puts the file under this folder
            self.storages[str(folder)] = self.storage

    def check(self, **kwargs: Any) -> list[Error]:
        if self.storage is None:
            return [Error("plotly.js is missing: install the `plotly` package (requirements.txt)", id="traffic.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        if self.storage is None or path != PATH:
            return [] if (find_all or kwargs.get("all")) else None
        found = os.path.join(self.storage.location, FILE)
        return [found] if (find_all or kwargs.get("all")) else found

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        if self.storage is not None:
            yield FILE, self.storage
