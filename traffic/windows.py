"""Per-stream measurement windows and the log-linear latency histogram they hold.

A window covers a fixed slice of wall-clock time (1 s by default, aligned to multiples of its length so
windows from different worker processes line up) and counts what one stream did in it: requests sent,
responses by status code, drops, in-flight at its end, and histograms of latency, service time and send
lag. Windows merge exactly, histograms included, so a longer range is computed by merging windows and
reading percentiles from the merged histogram, never by averaging per-window percentiles.

The histogram is HDR-style with 7 bits of sub-bucket precision: values (microseconds) below 256 are
exact, larger ones fall into buckets at most 1/128 (0.8 %) wide. Recording is a dict increment, and the
sparse bucket map is plain JSON, so browsers can merge too. No Django here: the generator core uses it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SUB_BITS = 7
_SUB = 1 << SUB_BITS
_EXACT_BELOW = 2 * _SUB
SUMMARY_PERCENTILES = (50.0, 90.0, 99.0)


def bucket_of(value: int) -> int:
    """The bucket key of a non-negative integer value; keys grow with values and are contiguous."""
    if value < _EXACT_BELOW:
        return value if value > 0 else 0
    shift = value.bit_length() - SUB_BITS - 1
    return ((shift + 1) << SUB_BITS) + (value >> shift) - _SUB


def bucket_bounds(key: int) -> tuple[int, int]:
    """The lowest and highest value that fall into bucket `key`."""
    if key < _EXACT_BELOW:
        return key, key
    shift = (key >> SUB_BITS) - 1
    mantissa = (key & (_SUB - 1)) + _SUB
    return mantissa << shift, ((mantissa + 1) << shift) - 1


class Histogram:
    """Counts of integer values (microseconds) in log-linear buckets, plus exact count, sum, min and max."""

    __slots__ = ("counts", "count", "total", "min", "max")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def record(self, value: int) -> None:
        if value < 0:
            value = 0
        key = bucket_of(value)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        if self.count == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.count += 1
        self.total += value

    def merge(self, other: Histogram) -> None:
        if not other.count:
            return
        counts = self.counts
        for key, n in other.counts.items():
            counts[key] = counts.get(key, 0) + n
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def value_at(self, percentile: float) -> int:
        """The value at `percentile` (0–100): the highest value of the bucket holding that rank, kept
        within the exact min and max, so a reported percentile never understates the recorded one."""
        return self.values_at((percentile,))[0]

    def values_at(self, percentiles: tuple[float, ...]) -> list[int]:
        """`value_at` for several ascending percentiles in one pass over the buckets."""
        if not self.count:
            return [0] * len(percentiles)
        ranks = [max(1, math.ceil(p / 100.0 * self.count)) for p in percentiles]
        out: list[int] = []
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            while len(out) < len(ranks) and seen >= ranks[len(out)]:
                out.append(max(self.min, min(bucket_bounds(key)[1], self.max)))
            if len(out) == len(ranks):
                break
        return out + [self.max] * (len(ranks) - len(out))

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def summary(self) -> dict[str, float]:
        """p50/p90/p99/max/mean in milliseconds, the unit the chart plots."""
        values = self.values_at(SUMMARY_PERCENTILES)
        out = {f"p{p:g}": v / 1000.0 for p, v in zip(SUMMARY_PERCENTILES, values, strict=True)}
        out["max"] = self.max / 1000.0
        out["mean"] = round(self.mean() / 1000.0, 3)
        return out

    def to_json(self) -> dict[str, Any]:
        """Sparse form: bucket keys and counts as one flat list [key, count, key, count, ...]."""
        flat: list[int] = []
        for key in sorted(self.counts):
            flat.append(key)
            flat.append(self.counts[key])
        return {"n": self.count, "sum": self.total, "min": self.min, "max": self.max, "b": flat}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Histogram:
        hist = cls()
        flat = data.get("b", [])
        hist.counts = {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
        hist.count = int(data.get("n", 0))
        hist.total = int(data.get("sum", 0))
        hist.min = int(data.get("min", 0))
        hist.max = int(data.get("max", 0))
        return hist


@dataclass
class StreamWindow:
    """What one stream did between `start` and `end` (wall-clock seconds).

    `rate` is the intended rate (req/s); `sent` counts requests that went out (by start time), the
    status counts and histograms count completed attempts (by completion time). `in_flight` is the number
    still outstanding when the window closed; `dropped` counts scheduled sends that were never made
    because the in-flight cap was reached or they were already older than the timeout.
    """

    start: float
    end: float
    rate: float = 0.0
    sent: int = 0
    dropped: int = 0
    in_flight: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)
    service: Histogram = field(default_factory=Histogram)
    send_lag: Histogram = field(default_factory=Histogram)

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 0.0)

    @property
    def completed(self) -> int:
        return sum(self.codes.values())

    @property
    def achieved_rate(self) -> float:
        """Sends per second actually made in the window."""
        return self.sent / self.duration if self.duration else 0.0

    def record_result(self, code: str, latency_us: int, service_us: int) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1
        self.latency.record(latency_us)
        self.service.record(service_us)

    def to_json(self) -> dict[str, Any]:
        """Summary fields for display plus the histograms for exact merging."""
        return {
            "start": self.start,
            "end": self.end,
            "rate": self.rate,
            "achieved": round(self.achieved_rate, 3),
            "sent": self.sent,
            "completed": self.completed,
            "dropped": self.dropped,
            "in_flight": self.in_flight,
            "codes": dict(self.codes),
            "latency": self.latency.summary(),
            "service": self.service.summary(),
            "send_lag": self.send_lag.summary(),
            "hist": {
                "latency": self.latency.to_json(),
                "service": self.service.to_json(),
                "send_lag": self.send_lag.to_json(),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StreamWindow:
        hist = data.get("hist", {})
        return cls(
            start=float(data["start"]),
            end=float(data["end"]),
            rate=float(data.get("rate", 0.0)),
            sent=int(data.get("sent", 0)),
            dropped=int(data.get("dropped", 0)),
            in_flight=int(data.get("in_flight", 0)),
            codes={str(k): int(v) for k, v in data.get("codes", {}).items()},
            latency=Histogram.from_json(hist.get("latency", {})),
            service=Histogram.from_json(hist.get("service", {})),
            send_lag=Histogram.from_json(hist.get("send_lag", {})),
        )


def merge_windows(windows: Iterable[StreamWindow]) -> StreamWindow:
    """One window covering all of `windows` (of one stream): counts and histograms add up, the intended
    rate is time-weighted, in-flight is the latest window's."""
    ordered = sorted(windows, key=lambda w: w.start)
    if not ordered:
        raise ValueError("no windows to merge")
    merged = StreamWindow(start=ordered[0].start, end=max(w.end for w in ordered))
    covered = sum(w.duration for w in ordered)
    merged.rate = sum(w.rate * w.duration for w in ordered) / covered if covered else ordered[-1].rate
    for w in ordered:
        merged.sent += w.sent
        merged.dropped += w.dropped
        for code, n in w.codes.items():
            merged.codes[code] = merged.codes.get(code, 0) + n
        merged.latency.merge(w.latency)
        merged.service.merge(w.service)
        merged.send_lag.merge(w.send_lag)
    merged.in_flight = ordered[-1].in_flight
    return merged


def status_class(code: str) -> str:
    """'2xx'...'5xx' for HTTP statuses; error codes (timeout, connect_error, ...) are their own class."""
    return f"{code[0]}xx" if code.isdigit() and len(code) == 3 else "error"
