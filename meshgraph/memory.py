"""The cyclic garbage collector around the graph's bursts of allocation.

Building one large graph allocates a few hundred thousand dicts, lists and tuples that all die
together once the JSON is out. With the collector running, those bursts trigger collections of the
oldest generation, which walk every object of the process (in the graph worker: Django, the
kubernetes client, the scraped series), and those walks cost more than the build itself (measured
by benchmarks/graph_build.py). So the synchronous parts of a build run with the collector paused:
they never await, they are bounded by the size of one graph, and what they leave behind is freed by
reference counting (the traffic map breaks its own cycles at the end, `TrafficMap.release`). The
worker also freezes what it imported at start-up (`freeze_startup`), so later full collections only
walk what was allocated since.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run a synchronous block without cyclic collections; the collector's state is restored after.

    Never hold it across an `await`: other tasks would run without the collector for as long.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_startup() -> None:
    """Move every object alive now (modules, settings, clients) out of the collector's sight for good."""
    gc.collect()
    gc.freeze()
