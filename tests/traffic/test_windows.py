"""The log-linear histogram and windows: accuracy, exact merging, JSON round trips."""

from __future__ import annotations

import json
import math
import random

import pytest

from traffic.windows import (
    Histogram,
    StreamWindow,
    bucket_bounds,
    bucket_of,
    merge_windows,
    status_class,
)


def exact_percentile(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def test_buckets_are_contiguous_and_narrow() -> None:
    previous_high = -1
    for key in range(0, bucket_of(60_000_000) + 1):
        low, high = bucket_bounds(key)
        assert low == previous_high + 1, key
        assert bucket_of(low) == key and bucket_of(high) == key
        assert (high - low) <= max(low, 1) / 128
        previous_high = high


def test_percentiles_within_one_percent_of_exact() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(8.5, 1.2)) for _ in range(50_000)]  # ~5 ms median, long tail
    hist = Histogram()
    for v in values:
        hist.record(v)
    for p in (50, 90, 99, 99.9):
        exact = exact_percentile(values, p)
        reported = hist.value_at(p)
        assert exact <= reported <= exact * 1.0079 + 1, (p, exact, reported)
    assert hist.value_at(100) == hist.max == max(values)
    assert hist.min == min(values) and hist.count == len(values)


def test_merge_is_exact_and_percentiles_are_never_averaged() -> None:
    """A quiet window and a stalled one: the merged p99 comes from the merged counts."""
    quiet, stalled, both = Histogram(), Histogram(), Histogram()
    for _ in range(990):
        quiet.record(1_000)
        both.record(1_000)
    for v in range(10):
        stalled.record(900_000 + v)
        both.record(900_000 + v)
    merged = Histogram()
    merged.merge(quiet)
    merged.merge(stalled)
    assert merged.counts == both.counts and merged.count == 1000 and merged.max == 900_009
    assert merged.value_at(99) == both.value_at(99) == bucket_bounds(bucket_of(1_000))[1]
    assert merged.value_at(99.5) >= 900_000
    assert (quiet.value_at(99.5) + stalled.value_at(99.5)) / 2 < 500_000  # what averaging would claim


def test_histogram_json_round_trip() -> None:
    hist = Histogram()
    for v in (0, 5, 300, 12_345, 7_000_000):
        hist.record(v)
    again = Histogram.from_json(json.loads(json.dumps(hist.to_json())))
    assert again.counts == hist.counts
    assert (again.count, again.total, again.min, again.max) == (5, hist.total, 0, 7_000_000)


def test_window_merge_adds_counts_and_weights_rates() -> None:
    first = StreamWindow(start=10.0, end=11.0, rate=100, sent=100, dropped=1, in_flight=3)
    second = StreamWindow(start=11.0, end=13.0, rate=200, sent=400, in_flight=5)
    for _ in range(90):
        first.record_result("200", 2_000, 1_500)
    first.record_result("timeout", 10_000_000, 10_000_000)
    for _ in range(380):
        second.record_result("200", 3_000, 2_000)
    for _ in range(20):
        second.record_result("503", 1_000, 900)
    merged = merge_windows([second, first])
    assert (merged.start, merged.end) == (10.0, 13.0)
    assert merged.codes == {"200": 470, "timeout": 1, "503": 20}
    assert merged.sent == 500 and merged.dropped == 1 and merged.in_flight == 5
    assert merged.rate == pytest.approx((100 * 1 + 200 * 2) / 3)
    assert merged.latency.count == 491 and merged.latency.max == 10_000_000
    assert merged.achieved_rate == pytest.approx(500 / 3)
    again = StreamWindow.from_json(json.loads(json.dumps(merged.to_json())))
    assert again.codes == merged.codes and again.latency.counts == merged.latency.counts


def test_status_classes() -> None:
    assert [status_class(c) for c in ("200", "302", "404", "503", "timeout", "connect_error")] == [
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "error",
        "error",
    ]
