"""Prometheus' arithmetic as the embedded source does it, the text format parser, and Kiali's PromQL text."""

from __future__ import annotations

import math

import pytest

from meshgraph.exposition import Parser, parse_labels
from meshgraph.promql import Series, evaluate_quantile, evaluate_rate, extrapolated_rate, histogram_quantile, prom_round
from meshgraph.queries import (
    DURATION_BUCKETS,
    REQUESTS,
    Matcher,
    QuantileQuery,
    RateQuery,
    request_queries,
    response_time_queries,
    security_queries,
)


def counter(times: range | list[float], per_second: float) -> list[tuple[float, float]]:
    return [(float(t), per_second * t) for t in times]


def test_rate_extrapolates_to_the_window_but_not_below_zero():
    # Samples 1..9 s of a counter growing 10/s since t=0, window [0, 10]: the start is extrapolated only
    # to where the counter was zero (1 s), the end by the 1 s gap, so the exact rate comes out.
    assert extrapolated_rate(counter(range(1, 10), 10), 0, 10) == pytest.approx(10.0)


def test_rate_extrapolates_only_half_an_interval_over_a_long_gap():
    # Samples 0..5 s in a 10 s window: the 5 s gap at the end is more than 1.1 intervals, so the
    # increase (50) is stretched by half an interval only: 50 * 5.5 / 5 / 10.
    assert extrapolated_rate(counter(range(0, 6), 10), 0, 10) == pytest.approx(5.5)


def test_rate_adds_back_counter_resets():
    points = [(0.0, 0.0), (1.0, 10.0), (2.0, 20.0), (3.0, 5.0), (4.0, 15.0)]
    assert extrapolated_rate(points, 0, 4) == pytest.approx((15 + 20) / 4)


def test_rate_needs_two_samples_in_the_window():
    assert extrapolated_rate([(5.0, 1.0)], 0, 10) is None
    assert extrapolated_rate(counter(range(0, 3), 1), 10, 20) is None


def test_histogram_quantile_interpolates_inside_the_bucket():
    buckets = [(1.0, 10.0), (5.0, 30.0), (10.0, 40.0), (math.inf, 40.0)]
    assert histogram_quantile(0.95, buckets) == pytest.approx(9.0)  # rank 38 in (5, 10]: 5 + 5 * 8/10
    assert histogram_quantile(0.5, buckets) == pytest.approx(3.0)  # rank 20 in (1, 5]: 1 + 4 * 10/20


def test_histogram_quantile_edge_cases():
    assert histogram_quantile(0.95, [(1.0, 0.0), (math.inf, 10.0)]) == 1.0  # only +Inf: highest finite bound
    assert math.isnan(histogram_quantile(0.5, [(1.0, 5.0), (2.0, 5.0)]))  # no +Inf bucket
    assert math.isnan(histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))  # no observations
    # Buckets that are not monotonic (scraped apart) are made so, as Prometheus does.
    assert histogram_quantile(0.5, [(1.0, 6.0), (2.0, 5.0), (math.inf, 10.0)]) == pytest.approx(1.0 - 1 / 6)


def test_round_is_prometheus_round_half_up():
    assert prom_round(0.0005) == 0.001
    assert prom_round(0.00049) == 0.0
    assert prom_round(12.34567) == 12.346


def test_matchers_are_anchored_and_missing_labels_are_empty():
    labels = {"destination_service": "kvstore.lab.svc.cluster.local", "reporter": "source"}
    assert Matcher("destination_service", "=~", r"^.+\.lab\..+$").matches(labels)
    assert not Matcher("destination_service", "=~", "kvstore").matches(labels)  # regexes match whole values
    assert Matcher("destination_service", "!~", "kvstore").matches(labels)
    assert Matcher("response_flags", "=", "").matches(labels)
    assert Matcher("source_workload_namespace", "!=", "lab").matches(labels)


def test_evaluate_rate_sums_by_grouping_drops_empty_labels_and_rounds():
    query = RateQuery("q", REQUESTS, (Matcher("reporter", "=", "destination"),), ("destination_workload", "grpc"))
    series = [
        Series(REQUESTS, {"reporter": "destination", "destination_workload": "kv", "pod": "a"}, counter(range(11), 1)),
        Series(REQUESTS, {"reporter": "destination", "destination_workload": "kv", "pod": "b"}, counter(range(11), 2)),
        Series(REQUESTS, {"reporter": "source", "destination_workload": "kv"}, counter(range(11), 5)),
        Series(REQUESTS, {"reporter": "destination", "destination_workload": "idle"}, counter(range(11), 0)),
        Series("other_total", {"reporter": "destination", "destination_workload": "kv"}, counter(range(11), 7)),
    ]
    [sample] = evaluate_rate(query, series, window_s=10, at=10.0)
    assert sample.labels == {"destination_workload": "kv"}  # "grpc" is empty, so absent, as in Prometheus
    assert sample.value == 3.0


def test_evaluate_quantile_groups_buckets_by_le():
    query = QuantileQuery("q", 0.5, DURATION_BUCKETS, (), ("le", "destination_workload"))
    series = [
        Series(DURATION_BUCKETS, {"le": le, "destination_workload": "kv"}, counter(range(11), per_second))
        for le, per_second in (("1", 1.0), ("5", 3.0), ("10", 4.0), ("+Inf", 4.0))
    ]
    [sample] = evaluate_quantile(query, series, window_s=10, at=10.0)
    assert sample.labels == {"destination_workload": "kv"}
    assert sample.value == 3.0


EXPOSITION = r"""# HELP istio_requests_total Requests handled by this proxy.
# TYPE istio_requests_total counter
istio_requests_total{reporter="source",destination_service="a\"b\\c",response_code="200",grpc_response_status=""} 41
istio_request_duration_milliseconds_bucket{reporter="source",le="+Inf"} 41
istio_request_bytes_bucket{reporter="source",le="1"} 3
envoy_cluster_upstream_rq 7
"""


def test_parser_keeps_wanted_metrics_unescapes_and_drops_empty_labels():
    parser = Parser({REQUESTS, DURATION_BUCKETS})
    samples = list(parser.samples(EXPOSITION))
    assert [(name, dict(labels), value) for name, _, labels, value in samples] == [
        (REQUESTS, {"reporter": "source", "destination_service": 'a"b\\c', "response_code": "200"}, 41.0),
        (DURATION_BUCKETS, {"reporter": "source", "le": "+Inf"}, 41.0),
    ]
    again = list(parser.samples(EXPOSITION))
    assert again[0][2] is samples[0][2]  # label sets are parsed once and reused
    assert parse_labels('a="1" , b="x\\ny"') == {"a": "1", "b": "x\ny"}


def test_queries_are_kialis_promql():
    unserved, incoming, outgoing = (q.promql(600) for q in request_queries("lab"))
    grouping = (
        "source_cluster,source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,"
        "destination_cluster,destination_service_namespace,destination_service,destination_service_name,"
        "destination_workload_namespace,destination_workload,destination_canonical_service,"
        "destination_canonical_revision,request_protocol,response_code,grpc_response_status,response_flags"
    )
    assert incoming == (
        'round(sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="lab"} [600s])) '
        f"by ({grouping}) > 0,0.001)"
    )
    assert outgoing.startswith('round(sum(rate(istio_requests_total{reporter="source",source_workload_namespace="lab"}')
    assert unserved.startswith(
        'round(sum(rate(istio_requests_total{reporter="source",source_workload_namespace!="lab",'
        'destination_workload_namespace="unknown",destination_workload="unknown",'
        'destination_service=~"^.+\\\\.lab\\\\..+$"} [600s]))'
    )
    p95 = response_time_queries("lab")[0].promql(600)
    assert p95.startswith(
        "round(histogram_quantile(0.95, sum(rate(istio_request_duration_milliseconds_bucket"
        '{reporter="destination",destination_service_namespace="lab"}[600s])) by (le,source_cluster,'
    )
    assert p95.endswith("destination_canonical_revision,request_protocol)) > 0,0.001)")
    outside = security_queries("lab")[0].promql(600)
    assert 'source_workload_namespace!="lab",destination_service_namespace="lab"' in outside
    assert "source_principal" in outside and outside.endswith(
        "destination_principal,connection_security_policy) > 0,0.001)"
    )
