"""A staticfiles finder for plotly.js as the installed `plotly` package ships it (no copy in the repo, no CDN).

The package's data folder also holds a 5 MB widget bundle, datasets and templates that no page uses, so
rather than adding the whole folder to STATICFILES_DIRS this finder offers exactly one file, under
`vendor/plotly/plotly.min.js`. `collectstatic` then hashes and precompresses it like any other static
file (ServeStatic serves it compressed, cached for good), and in DEBUG the finders serve it directly.

Which file: by default the vendored basic bundle (`traffic/vendor/plotly-basic/`, the same plotly.js release
as the package's, 394 kB gzip instead of the full bundle's 1.47 MB, which alone would break a step page's
1.5 MB first-load budget); TRAFFIC_PLOTLY_JS=full serves the installed package's full bundle, and any other
value names a plotly.js file. The chart uses scatter traces, shapes and annotations only, which every bundle has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

from traffic import conf

PREFIX = "vendor/plotly"
FILE = "plotly.min.js"
PATH = f"{PREFIX}/{FILE}"
BASIC = Path(__file__).resolve().parent / "vendor" / "plotly-basic" / "plotly-basic.min.js"


def package_data() -> Path | None:
    """The `plotly` package's data folder, or None when plotly is not installed."""
    try:
        import plotly
    except ImportError:
        return None
    return Path(plotly.__file__).resolve().parent / "package_data"


def source() -> Path | None:
    """The plotly.js file to serve: the vendored basic bundle, the package's full one ("full") or a named file."""
    chosen = conf.get("TRAFFIC_PLOTLY_JS")
    if chosen == "full":
        folder = package_data()
        return folder / FILE if folder is not None else None
    if chosen:
        return Path(chosen).resolve()
    return BASIC


class _OneFile(FileSystemStorage):
    """A folder holding one file, offered under the name `FILE` whatever its own name is."""

    def __init__(self, file: Path) -> None:
        super().__init__(location=str(file.parent))
        self.file = file
        self.prefix = PREFIX  # collectstatic puts the file under this folder

    def path(self, name: str) -> str:
        return str(self.file) if name == FILE else super().path(name)


class PlotlyFinder(BaseFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        file = source()
        self.file = file
        self.storage: _OneFile | None = None
        self.storages: dict[str, FileSystemStorage] = {}  # what other code reads from finders (ServeStatic)
        if file is not None and file.is_file():
            self.storage = _OneFile(file)
            self.storages[str(file.parent)] = self.storage

    def check(self, **kwargs: Any) -> list[Error]:
        if self.storage is None:
            where = self.file or "the plotly package (requirements.txt)"
            return [Error(f"plotly.js is missing: no file at {where}", id="traffic.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        if self.storage is None or path != PATH:
            return []  # what Django's own finders answer for a miss, whether or not all are wanted
        found = self.storage.path(FILE)
        return [found] if (find_all or kwargs.get("all")) else found

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        if self.storage is not None:
            yield FILE, self.storage
