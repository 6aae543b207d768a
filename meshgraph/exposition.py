"""Reading the Prometheus text format (0.0.4) that Envoy serves on each proxy's metrics port.

Only the metrics the graph needs are kept; the other lines are skipped after a look at their name.
A proxy repeats the same label sets every scrape, so parsed label sets are cached by their text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator, Mapping

_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = re.compile(r"\\(.)")
_ESCAPED = {"n": "\n", "\\": "\\", '"': '"'}
CACHE_LIMIT = 50_000  # label sets; the cache starts over when full (pods come and go over days)


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(lambda m: _ESCAPED.get(m.group(1), "\\" + m.group(1)), value)


def parse_labels(text: str) -> dict[str, str]:
    """`a="1",b="x\\"y"` -> {"a": "1", "b": 'x"y'}; empty values are dropped, as Prometheus does."""
    labels = {}
    for match in _PAIR.finditer(text):
        value = _unescape(match.group(2))
        if value:
            labels[match.group(1)] = value
    return labels


def _number(text: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    return float(text)


class Parser:
    """Parses expositions, reusing the label dictionaries of label sets it has seen before."""

    def __init__(self, metrics: Collection[str]) -> None:
        self.metrics = frozenset(metrics)
        self._labels: dict[str, Mapping[str, str]] = {}

    def samples(self, text: str) -> Iterator[tuple[str, str, Mapping[str, str], float]]:
        """(metric, label text, labels, value) for each wanted sample line; timestamps are ignored."""
        for line in text.splitlines():
            if not line or line[0] == "#":
                continue
            brace = line.find("{")
            space = line.find(" ")
            if brace != -1 and (space == -1 or brace < space):
                name = line[:brace]
                if name not in self.metrics:
                    continue
                close = line.rfind("}")
                raw = line[brace + 1 : close]
                rest = line[close + 1 :].split()
            else:
                name = line[:space] if space != -1 else line
                if name not in self.metrics:
                    continue
                raw = ""
                rest = line[space + 1 :].split()
            if not rest:
                continue
            labels = self._labels.get(raw)
            if labels is None:
                if len(self._labels) >= CACHE_LIMIT:
                    self._labels.clear()
                labels = self._labels[raw] = parse_labels(raw)
            yield name, raw, labels, _number(rest[0])
