"""Istio request metrics of a proxy: label rules, histogram buckets and the Prometheus text exposition."""

from __future__ import annotations

import time

import pytest

from sandbox.mesh.telemetry import (
    BUCKETS,
    ISTIO_LABELS,
    UNKNOWN_PEER,
    Peer,
    ProxyMetrics,
    peer_for_pod,
)

SPLITDIM = Peer(
    workload="splitdim",
    namespace="lab",
    principal="spiffe://cluster.local/ns/lab/sa/splitdim",
    app="splitdim",
    version="v1",
    canonical_service="splitdim",
    canonical_revision="v1",
)
KVSTORE = Peer(
    workload="kvstore",
    namespace="lab",
    principal="spiffe://cluster.local/ns/lab/sa/default",
    app="kvstore",
    canonical_service="kvstore",
    canonical_revision="latest",
)
KV_FQDN = "kvstore.lab.svc.cluster.local"


# --- a minimal parser for the text format (prometheus_client is not installed) ---


def parse(text: bytes) -> tuple[dict[str, tuple[str, str]], list[tuple[str, dict[str, str], str]]]:
    """Return ({metric: (help, type)}, [(sample name, labels, value)]), checking label order too."""
    meta: dict[str, list[str]] = {}
    samples = []
    for line in text.decode().split("\n"):
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = line.split(" ", 3)
            meta.setdefault(name, ["", ""])[0 if kind == "HELP" else 1] = rest
            continue
        assert not line.startswith("#"), line
        name, labels, value = parse_sample(line)
        samples.append((name, labels, value))
    return {k: (v[0], v[1]) for k, v in meta.items()}, samples


def parse_sample(line: str) -> tuple[str, dict[str, str], str]:
    brace = line.index("{")
    name, i = line[:brace], brace + 1
    labels: dict[str, str] = {}
    while line[i] != "}":
        eq = line.index("=", i)
        key = line[i:eq]
        assert line[eq + 1] == '"', line
        i, value = eq + 2, []
        while line[i] != '"':
            if line[i] == "\\":
                value.append({"\\": "\\", '"': '"', "n": "\n"}[line[i + 1]])
                i += 2
            else:
                value.append(line[i])
                i += 1
        assert key not in labels, f"duplicate label {key}"
        labels[key] = "".join(value)
        i += 1
        if line[i] == ",":
            i += 1
    assert line[i + 1] == " ", line
    return name, labels, line[i + 2 :]


def samples_named(samples: list, name: str) -> list[tuple[dict[str, str], str]]:
    return [(labels, value) for n, labels, value in samples if n == name]


def only(samples: list, name: str) -> dict[str, str]:
    found = samples_named(samples, name)
    assert len(found) == 1, found
    return found[0][0]


# --- tests ---


def test_exact_exposition_of_one_request() -> None:
    metrics = ProxyMetrics()
    metrics.record("source", SPLITDIM, KVSTORE, KV_FQDN, "kvstore", 200, "-", "mutual_tls", 3.25, 180, 1200)
    labels = (
        'reporter="source",source_workload="splitdim",source_canonical_service="splitdim",'
        'source_canonical_revision="v1",source_workload_namespace="lab",'
        'source_principal="spiffe://cluster.local/ns/lab/sa/splitdim",source_app="splitdim",'
        'source_version="v1",source_cluster="Kubernetes",destination_workload="kvstore",'
        'destination_workload_namespace="lab",destination_principal="spiffe://cluster.local/ns/lab/sa/default",'
        'destination_app="kvstore",destination_version="unknown",'
        'destination_service="kvstore.lab.svc.cluster.local",destination_canonical_service="kvstore",'
        'destination_canonical_revision="latest",destination_service_name="kvstore",'
        'destination_service_namespace="lab",destination_cluster="Kubernetes",request_protocol="http",'
        'response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="unknown"'
    )
    les = ["0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000"]
    les += ["30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"]

    def histogram(name: str, first_hit: str, total: str) -> str:
        hit = les.index(first_hit)
        lines = [f'{name}_bucket{{{labels},le="{le}"}} {int(i >= hit)}\n' for i, le in enumerate(les)]
        return "".join(lines) + f"{name}_sum{{{labels}}} {total}\n{name}_count{{{labels}}} 1\n"

    expected = (
        "# HELP istio_requests_total Requests handled by this proxy.\n"
        "# TYPE istio_requests_total counter\n"
        f"istio_requests_total{{{labels}}} 1\n"
        "# HELP istio_request_bytes Request sizes in bytes, headers and body, as read from the client.\n"
        "# TYPE istio_request_bytes histogram\n"
        + histogram("istio_request_bytes", "250", "180")
        + "# HELP istio_request_duration_milliseconds Request durations in milliseconds.\n"
        "# TYPE istio_request_duration_milliseconds histogram\n"
        + histogram("istio_request_duration_milliseconds", "5", "3.25")
        + "# HELP istio_response_bytes Response sizes in bytes, headers and body, as written to the client.\n"
        "# TYPE istio_response_bytes histogram\n" + histogram("istio_response_bytes", "2500", "1200")
    )
    assert metrics.exposition().decode() == expected

    meta, samples = parse(metrics.exposition())
    assert meta["istio_requests_total"][1] == "counter"
    assert {meta[n][1] for n in meta if n != "istio_requests_total"} == {"histogram"}
    assert len(samples) == 1 + 3 * (len(BUCKETS) + 3)
    assert tuple(only(samples, "istio_requests_total")) == ISTIO_LABELS


def test_empty_exposition_has_only_metadata() -> None:
    meta, samples = parse(ProxyMetrics().exposition())
    assert samples == []
    assert set(meta) == {
        "istio_requests_total",
        "istio_request_bytes",
        "istio_request_duration_milliseconds",
        "istio_response_bytes",
    }


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    metrics = ProxyMetrics()
    durations = [0.2, 0.5, 0.7, 5.0, 5.01, 42.0, 999.9, 4_000_000.0]  # boundaries count as "le"
    for ms in durations:
        metrics.record("destination", SPLITDIM, KVSTORE, KV_FQDN, "kvstore", 200, "-", "mutual_tls", ms, 0, 0)
    _, samples = parse(metrics.exposition())
    buckets = samples_named(samples, "istio_request_duration_milliseconds_bucket")
    by_le = {labels["le"]: int(value) for labels, value in buckets}
    assert list(by_le) == [str(b) for b in BUCKETS] + ["+Inf"]
    counts = list(by_le.values())
    assert counts == sorted(counts)
    assert by_le["0.5"] == 2 and by_le["1"] == 3 and by_le["5"] == 4 and by_le["10"] == 5
    assert by_le["50"] == 6 and by_le["1000"] == 7 and by_le["3600000"] == 7 and by_le["+Inf"] == 8
    (_, count), (_, total) = (
        samples_named(samples, "istio_request_duration_milliseconds_count")[0],
        samples_named(samples, "istio_request_duration_milliseconds_sum")[0],
    )
    assert int(count) == len(durations)
    assert float(total) == pytest.approx(sum(durations))
    sizes = {labels["le"]: int(v) for labels, v in samples_named(samples, "istio_request_bytes_bucket")}
    assert set(sizes.values()) == {len(durations)}  # zero bytes fall in the first bucket


def test_label_values_are_escaped() -> None:
    odd = Peer(workload='we"ird\\name', namespace="lab", app="line\nbreak", canonical_service="x")
    metrics = ProxyMetrics()
    metrics.record("source", odd, KVSTORE, KV_FQDN, "kvstore", 200, "-", "none", 1, 1, 1)
    text = metrics.exposition()
    assert b'source_workload="we\\"ird\\\\name"' in text
    assert b'source_app="line\\nbreak"' in text
    assert text.count(b"\n") == len(text.decode().splitlines())  # no raw newline inside a line
    _, samples = parse(text)
    labels = only(samples, "istio_requests_total")
    assert labels["source_workload"] == 'we"ird\\name'
    assert labels["source_app"] == "line\nbreak"


def test_request_from_outside_the_mesh() -> None:
    metrics = ProxyMetrics()
    metrics.record("destination", UNKNOWN_PEER, KVSTORE, KV_FQDN, "kvstore", 200, "-", "none", 2, 90, 40)
    _, samples = parse(metrics.exposition())
    labels = only(samples, "istio_requests_total")
    for name in (
        "source_workload",
        "source_canonical_service",
        "source_workload_namespace",
        "source_principal",
    ):
        assert labels[name] == "unknown"
    assert labels["source_app"] == labels["source_version"] == labels["source_cluster"] == "unknown"
    assert labels["source_canonical_revision"] == "latest"
    assert labels["reporter"] == "destination"
    assert labels["destination_workload"] == "kvstore"
    assert labels["destination_principal"] == "unknown"  # plaintext: no principals
    assert labels["connection_security_policy"] == "none"
    # The reporting proxy's own fields are reported as they are; peer fields fall back to "unknown".
    assert labels["destination_version"] == ""


def test_request_that_reached_no_workload() -> None:
    metrics = ProxyMetrics()
    metrics.record("source", SPLITDIM, UNKNOWN_PEER, KV_FQDN, "kvstore", 0, "NR", "none", 0.1, 120, 0)
    metrics.record("source", SPLITDIM, UNKNOWN_PEER, "", "", 503, "UF", "none", 0.1, 120, 95)
    _, samples = parse(metrics.exposition())
    rows = {labels["response_code"]: labels for labels, _ in samples_named(samples, "istio_requests_total")}
    no_route = rows["0"]
    assert no_route["response_flags"] == "NR"
    assert no_route["destination_service"] == KV_FQDN
    assert no_route["destination_workload"] == no_route["destination_workload_namespace"] == "unknown"
    # The route named the Service, so its namespace is known though no workload answered.
    assert no_route["destination_service_namespace"] == KV_FQDN.split(".")[1]
    assert no_route["destination_cluster"] == "unknown"
    assert no_route["destination_canonical_revision"] == "latest"
    assert no_route["source_workload"] == "splitdim" and no_route["source_cluster"] == "Kubernetes"
    assert rows["503"]["destination_service"] == rows["503"]["destination_service_name"] == "unknown"


def test_security_policy_and_principals_follow_the_reporter() -> None:
    metrics = ProxyMetrics()
    for reporter in ("source", "destination"):
        for policy in ("mutual_tls", "none"):
            metrics.record(reporter, SPLITDIM, KVSTORE, KV_FQDN, "kvstore", 200, "-", policy, 1, 1, 1)
    _, samples = parse(metrics.exposition())
    seen = {
        (labels["reporter"], labels["connection_security_policy"], labels["source_principal"])
        for labels, _ in samples_named(samples, "istio_requests_total")
    }
    assert seen == {
        ("source", "unknown", SPLITDIM.principal),
        ("source", "unknown", "unknown"),
        ("destination", "mutual_tls", SPLITDIM.principal),
        ("destination", "none", "unknown"),
    }


def test_counts_after_many_records() -> None:
    metrics = ProxyMetrics()
    kv2 = Peer(workload="kvstore-v2", namespace="lab", app="kvstore", canonical_service="kvstore")
    expected: dict[tuple[str, str], int] = {}
    total_bytes = 0
    for i in range(20_000):
        dst = KVSTORE if i % 3 else kv2
        code = 500 if i % 7 == 0 else 200
        metrics.record("source", SPLITDIM, dst, KV_FQDN, "kvstore", code, "-", "mutual_tls", i % 40, i % 500, 7)
        key = (dst.workload, str(code))
        expected[key] = expected.get(key, 0) + 1
        total_bytes += i % 500
    _, samples = parse(metrics.exposition())
    counted = {
        (labels["destination_workload"], labels["response_code"]): int(value)
        for labels, value in samples_named(samples, "istio_requests_total")
    }
    assert counted == expected
    assert sum(int(v) for _, v in samples_named(samples, "istio_response_bytes_count")) == 20_000
    assert sum(int(v) for _, v in samples_named(samples, "istio_request_bytes_sum")) == total_bytes
    assert sum(int(v) for _, v in samples_named(samples, "istio_response_bytes_sum")) == 7 * 20_000


def test_series_order_is_stable() -> None:
    calls = [
        ("source", SPLITDIM, KVSTORE, 200),
        ("destination", UNKNOWN_PEER, SPLITDIM, 404),
        ("source", SPLITDIM, UNKNOWN_PEER, 0),
        ("destination", SPLITDIM, KVSTORE, 500),
    ]
    texts = []
    for order in (calls, calls[::-1]):
        metrics = ProxyMetrics()
        for reporter, src, dst, code in order:
            metrics.record(reporter, src, dst, KV_FQDN, "kvstore", code, "-", "mutual_tls", 1, 1, 1)
        texts.append(metrics.exposition())
    assert texts[0] == texts[1]
    _, samples = parse(texts[0])
    assert len(samples_named(samples, "istio_requests_total")) == 4


def test_ten_thousand_series_render_fast() -> None:
    metrics = ProxyMetrics()
    # Each label set is 67 series: a counter plus three histograms of 20 buckets, a sum and a count.
    for i in range(150):
        dst = Peer(workload=f"svc{i}", namespace="lab", canonical_service=f"svc{i}")
        metrics.record("source", SPLITDIM, dst, f"svc{i}.lab.svc.cluster.local", f"svc{i}", 200, "-",
                       "mutual_tls", 3, 200, 900)  # fmt: skip
    start = time.perf_counter()
    text = metrics.exposition()
    elapsed = time.perf_counter() - start
    series = sum(1 for line in text.split(b"\n") if line and not line.startswith(b"#"))
    assert series >= 10_000
    assert elapsed < 0.1, f"{series} series took {elapsed * 1000:.0f} ms"


def test_peer_for_pod_reads_injected_labels() -> None:
    pod = {
        "metadata": {
            "name": "splitdim-7d9f-abcde",
            "namespace": "lab",
            "labels": {
                "app": "splitdim",
                "version": "v2",
                "service.istio.io/canonical-name": "splitdim",
                "service.istio.io/canonical-revision": "v2",
            },
        },
        "spec": {"serviceAccountName": "splitdim"},
    }
    peer = peer_for_pod(pod, "splitdim")
    assert peer == Peer(
        workload="splitdim",
        namespace="lab",
        principal="spiffe://cluster.local/ns/lab/sa/splitdim",
        app="splitdim",
        version="v2",
        canonical_service="splitdim",
        canonical_revision="v2",
        cluster="Kubernetes",
    )
    bare = peer_for_pod({"metadata": {"namespace": "lab"}, "spec": {}}, "kvstore")
    assert (bare.canonical_service, bare.canonical_revision) == ("kvstore", "latest")
    assert bare.principal == "spiffe://cluster.local/ns/lab/sa/default"
