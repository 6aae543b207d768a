"""Prometheus' own arithmetic for the few functions the graph uses, over samples kept in memory.

`rate()` follows `extrapolatedRate` of Prometheus 2.x (the version Debian ships and the tests run):
samples in the closed range [t - W, t], counter resets added back, and the result extrapolated
towards the range's ends unless the gap there is more than 1.1 average sample intervals (then by
half an interval), never before the counter's extrapolated zero. `histogram_quantile()` follows
`bucketQuantile` (linear interpolation inside the bucket, the highest finite bound for the +Inf
bucket), and `round(v, 0.001)` rounds half up as Prometheus does. With these, the embedded source and
a real Prometheus that scraped the same proxies at the same times give the same answers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from meshgraph.queries import Matcher, QuantileQuery, RateQuery

Point = tuple[float, float]  # (unix time in seconds, value)


class Sample(NamedTuple):
    """One element of an instant vector: its labels (empty values left out, as Prometheus does) and value."""

    labels: Mapping[str, str]
    value: float


@dataclass(slots=True)
class Series:
    """A scraped series: its labels and its points in time order; `moved`: when its value last changed
    (-inf if not seen to change yet), which the embedded source uses to tell news from steady traffic."""

    metric: str
    labels: Mapping[str, str]
    points: Sequence[Point]
    moved: float = -math.inf


def extrapolated_rate(points: Sequence[Point], start: float, end: float) -> float | None:
    """Per-second rate of a counter over [start, end]; None with fewer than two points in range."""
    inside = [p for p in points if start <= p[0] <= end]
    if len(inside) < 2:
        return None
    first_t, first_v = inside[0]
    last_t, last_v = inside[-1]
    increase = last_v - first_v
    previous = first_v
    for _, value in inside[1:]:
        if value < previous:  # a counter reset: the counter restarted from zero
            increase += previous
        previous = value
    sampled = last_t - first_t
    if sampled <= 0:
        return None
    to_start = first_t - start
    to_end = end - last_t
    average = sampled / (len(inside) - 1)
    if increase > 0 and first_v >= 0:
        to_zero = sampled * (first_v / increase)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    extended = sampled
    extended += to_start if to_start < threshold else average / 2
    extended += to_end if to_end < threshold else average / 2
    return increase * (extended / sampled) / (end - start)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The q-quantile of a classic histogram given as (upper bound, cumulative rate) pairs."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    # Make the cumulative counts monotonic (scrapes of different buckets can disagree slightly).
    monotonic: list[tuple[float, float]] = []
    high = -math.inf
    for bound, count in ordered:
        high = max(high, count)
        monotonic.append((bound, high))
    observations = monotonic[-1][1]
    if observations <= 0:
        return math.nan
    rank = q * observations
    index = next(i for i, (_, count) in enumerate(monotonic) if count >= rank)
    if index == len(monotonic) - 1:
        return monotonic[-2][0]
    if index == 0 and monotonic[0][0] <= 0:
        return monotonic[0][0]
    bucket_start, below = (0.0, 0.0) if index == 0 else monotonic[index - 1]
    bucket_end, count = monotonic[index]
    if count <= below:  # only with q == 0: an empty first bucket
        return bucket_end
    return bucket_start + (bucket_end - bucket_start) * ((rank - below) / (count - below))


def prom_round(value: float, to_nearest: float = 0.001) -> float:
    """PromQL's round(v, to_nearest): half rounds up."""
    inverse = 1.0 / to_nearest
    return math.floor(value * inverse + 0.5) / inverse


def _selected(series: Iterable[Series], metric: str, matchers: tuple[Matcher, ...]) -> Iterable[Series]:
    return (s for s in series if s.metric == metric and all(m.matches(s.labels) for m in matchers))


def _group(labels: Mapping[str, str], grouping: Sequence[str]) -> tuple[str, ...]:
    return tuple(labels.get(name, "") for name in grouping)


def _sample(grouping: Sequence[str], key: tuple[str, ...], value: float) -> Sample:
    return Sample({name: v for name, v in zip(grouping, key, strict=True) if v}, value)


def summed_rates(
    series: Iterable[Series],
    metric: str,
    matchers: tuple[Matcher, ...],
    grouping: Sequence[str],
    start: float,
    end: float,
) -> dict[tuple[str, ...], float]:
    """`sum(rate(metric{matchers}[end-start])) by (grouping)` at `end`, keyed by the grouping's values."""
    sums: dict[tuple[str, ...], float] = defaultdict(float)
    for s in _selected(series, metric, matchers):
        rate = extrapolated_rate(s.points, start, end)
        if rate is not None:
            sums[_group(s.labels, grouping)] += rate
    return sums


def evaluate_rate(query: RateQuery, series: Iterable[Series], window_s: int, at: float) -> list[Sample]:
    """The instant vector a Prometheus holding `series` returns for `query.promql(window_s)` at `at`."""
    sums = summed_rates(series, query.metric, query.matchers, query.grouping, at - window_s, at)
    return [_sample(query.grouping, key, prom_round(v)) for key, v in sums.items() if v > 0]


def evaluate_quantile(query: QuantileQuery, series: Iterable[Series], window_s: int, at: float) -> list[Sample]:
    """The instant vector a Prometheus holding `series` returns for `query.promql(window_s)` at `at`."""
    sums = summed_rates(series, query.metric, query.matchers, query.grouping, at - window_s, at)
    le = query.grouping.index("le")
    others = tuple(name for name in query.grouping if name != "le")
    histograms: dict[tuple[str, ...], list[tuple[float, float]]] = defaultdict(list)
    for key, value in sums.items():
        try:
            bound = float(key[le])
        except ValueError:
            continue  # a bucket without a numeric `le` is ignored, as Prometheus does
        histograms[key[:le] + key[le + 1 :]].append((bound, value))
    out = []
    for key, buckets in histograms.items():
        value = histogram_quantile(query.quantile, buckets)
        if value > 0:  # also drops NaN
            out.append(_sample(others, key, prom_round(value)))
    return out
