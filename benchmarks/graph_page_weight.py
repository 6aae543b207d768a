"""Page weight of the mesh graph panel: the bytes its scripts and stylesheet add to a lab step page.

Budget (issue 6): the panel's scripts add at most 500 KB compressed. Every asset that
templates/meshgraph/panel.html links with {% static %} is counted, gzip -9 compressed as ServeStatic's
collectstatic precompresses it; live.js is counted too although the step page already loads it.
Run: .venv/bin/python benchmarks/graph_page_weight.py   (exit status 1 when over budget)
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
PANEL = REPO / "templates" / "meshgraph" / "panel.html"
STATIC = REPO / "static"
SCRIPT_BUDGET = 500_000
STATIC_TAG = re.compile(r"""{%\s*static\s+['"]([^'"]+)['"]\s*%}""")


class Asset(NamedTuple):
    path: str
    raw: int
    gzipped: int


def panel_assets() -> list[Asset]:
    """Each static file the panel links, in template order, with its size raw and gzipped."""
    assets = []
    for path in STATIC_TAG.findall(PANEL.read_text()):
        data = (STATIC / path).read_bytes()
        assets.append(Asset(path, len(data), len(gzip.compress(data, compresslevel=9, mtime=0))))
    return assets


def script_weight(assets: list[Asset]) -> int:
    """Compressed bytes of the panel's scripts (the budgeted figure)."""
    return sum(a.gzipped for a in assets if a.path.endswith(".js"))


def main() -> int:
    assets = panel_assets()
    print(f"{'asset':<40} {'raw B':>10} {'gzip B':>10}")
    for asset in assets:
        print(f"{asset.path:<40} {asset.raw:>10,} {asset.gzipped:>10,}")
    scripts = script_weight(assets)
    total = sum(a.gzipped for a in assets)
    print(f"{'scripts, gzip':<40} {'':>10} {scripts:>10,}  (budget {SCRIPT_BUDGET:,})")
    print(f"{'scripts + stylesheet, gzip':<40} {'':>10} {total:>10,}")
    if scripts > SCRIPT_BUDGET:
        print("OVER BUDGET")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
