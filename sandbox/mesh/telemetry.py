"""Istio's standard request metrics for one proxy, and their Prometheus text exposition.

A sidecar or gateway proxy calls `ProxyMetrics.record` once per finished request, as Istio's stats
filter does from Envoy's access-log hook, and serves `exposition()` on its metrics port. Metric
names, label names, label order, the "unknown"/"latest" fallbacks and the histogram buckets follow
Istio's native stats filter (istio/proxy `istio_stats.cc`) and Envoy's Prometheus admin output, so a
stock Prometheus and Kiali's PromQL see what they would see on a real mesh.

Not thread-safe: each proxy records from its own asyncio event loop.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Literal

Reporter = Literal["source", "destination"]
SecurityPolicy = Literal["mutual_tls", "none", "unknown"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_CLUSTER = "Kubernetes"  # Istio's default CLUSTER_ID
TRUST_DOMAIN = "cluster.local"

# Label names in the order Istio's stats filter attaches them to every HTTP series.
ISTIO_LABELS: tuple[str, ...] = (
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)

# Istio sets no histogram_bucket_settings of its own, so all three histograms use Envoy's defaults
# (durations in milliseconds, sizes in bytes).
BUCKETS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
    1800000, 3600000,
)  # fmt: skip
_LE = tuple(f',le="{b}"}} '.encode() for b in BUCKETS) + (b',le="+Inf"} ',)


def _header(name: str, kind: str, text: str) -> bytes:
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n".encode()


_HEADER = {
    "istio_requests_total": _header("istio_requests_total", "counter", "Requests handled by this proxy."),
    "istio_request_bytes": _header(
        "istio_request_bytes",
        "histogram",
        "Request sizes in bytes, headers and body, as read from the client.",
    ),
    "istio_request_duration_milliseconds": _header(
        "istio_request_duration_milliseconds", "histogram", "Request durations in milliseconds."
    ),
    "istio_response_bytes": _header(
        "istio_response_bytes",
        "histogram",
        "Response sizes in bytes, headers and body, as written to the client.",
    ),
}


@dataclass(frozen=True, slots=True)
class Peer:
    """One end of a request: the workload's identity as Istio's metadata exchange carries it.

    Empty strings mean "not known". The reporting proxy's own side is reported as is; the far side
    (learnt from the peer) falls back to "unknown", or "latest" for the canonical revision.
    """

    workload: str
    namespace: str
    principal: str = ""
    app: str = ""
    version: str = ""
    canonical_service: str = ""
    canonical_revision: str = ""
    cluster: str = DEFAULT_CLUSTER
    # Label values precomputed once, so `record` only hashes these tuples. Order: workload,
    # canonical service, canonical revision, namespace, app, version, cluster.
    local: tuple[str, ...] = field(init=False, repr=False, compare=False)
    remote: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        local = (
            self.workload,
            self.canonical_service,
            self.canonical_revision,
            self.namespace,
            self.app,
            self.version,
            self.cluster,
        )
        remote = tuple(v or "unknown" for v in local)
        remote = remote[:2] + (self.canonical_revision or "latest",) + remote[3:]
        object.__setattr__(self, "local", local)
        object.__setattr__(self, "remote", remote)


# What a proxy reports for a peer outside the mesh (no sidecar, no metadata exchange).
UNKNOWN_PEER = Peer(workload="", namespace="", cluster="")


def peer_for_pod(pod: dict, workload: str, cluster: str = DEFAULT_CLUSTER) -> Peer:
    """The identity an injected pod's proxy announces: canonical labels, SPIFFE principal, app/version."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    namespace = meta.get("namespace") or "default"
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    return Peer(
        workload=workload,
        namespace=namespace,
        principal=f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}",
        app=labels.get("app", ""),
        version=labels.get("version", ""),
        canonical_service=labels.get("service.istio.io/canonical-name")
        or labels.get("app.kubernetes.io/name")
        or labels.get("app")
        or workload,
        canonical_revision=labels.get("service.istio.io/canonical-revision")
        or labels.get("app.kubernetes.io/version")
        or labels.get("version")
        or "latest",
        cluster=cluster,
    )


class _Series:
    """Counts for one label set: the request counter and three histograms (per-bucket, not cumulative)."""

    __slots__ = (
        "count",
        "duration",
        "duration_sum",
        "request",
        "request_sum",
        "response",
        "response_sum",
        "labels",
    )

    def __init__(self) -> None:
        self.labels = b""  # rendered label text, built on first exposition
        self.count = 0
        self.duration = [0] * (len(BUCKETS) + 1)  # last slot: above the largest bucket
        self.duration_sum = 0.0
        self.request = [0] * (len(BUCKETS) + 1)
        self.request_sum = 0
        self.response = [0] * (len(BUCKETS) + 1)
        self.response_sum = 0


class ProxyMetrics:
    """The Istio request metrics of one proxy (sidecar or gateway)."""

    def __init__(self) -> None:
        # Keyed by: reporter, source labels, source principal, destination labels, destination
        # principal, destination_service, destination_service_name, response_code, response_flags,
        # security policy, request_protocol, grpc_response_status. Every part is a rendered label
        # value, so two keys never render to the same label set.
        self._series: dict[tuple, _Series] = {}

    def record(
        self,
        reporter: Reporter,
        source: Peer,
        destination: Peer,
        destination_service: str,
        destination_service_name: str,
        response_code: int,
        response_flags: str,
        security_policy: SecurityPolicy,
        duration_ms: float,
        request_bytes: int,
        response_bytes: int,
        protocol: str = "http",
        grpc_status: str = "",
    ) -> None:
        """Count one finished request as this proxy saw it.

        `reporter` is "source" on the client side (outbound sidecar, ingress gateway) and
        "destination" on the server side (inbound sidecar). `security_policy` is what the connection
        really was; as in Istio, the label carries it only on destination-reported series, and peer
        principals are reported only over mutual TLS. There is no destination_service_namespace
        argument: Istio fills that label with the destination workload's namespace ("unknown" when
        no workload answered). `response_code` is 0 when no response was received;
        `response_flags` is "-" when none (e.g. "UF", "URX", "NR", "UO", "FI", "DI" otherwise).
        """
        mtls = security_policy == "mutual_tls"
        if reporter == "source":
            src, dst = source.local, destination.remote
            policy = "unknown"
            service = destination_service or "unknown"
            service_name = destination_service_name or "unknown"
        else:
            src, dst = source.remote, destination.local
            policy = security_policy
            service = destination_service or destination.canonical_service
            service_name = destination_service_name or destination.canonical_service
        key = (
            reporter,
            src,
            (source.principal or "unknown") if mtls else "unknown",
            dst,
            (destination.principal or "unknown") if mtls else "unknown",
            service,
            service_name,
            response_code,
            response_flags or "-",
            policy,
            protocol,
            grpc_status,
        )
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = _Series()
        s.count += 1
        s.duration[bisect_left(BUCKETS, duration_ms)] += 1
        s.duration_sum += duration_ms
        s.request[bisect_left(BUCKETS, request_bytes)] += 1
        s.request_sum += request_bytes
        s.response[bisect_left(BUCKETS, response_bytes)] += 1
        s.response_sum += response_bytes

    def exposition(self) -> bytes:
        """All series in Prometheus text format 0.0.4, grouped per metric and sorted by labels."""
        for key, s in self._series.items():
            if not s.labels:
                s.labels = _render_labels(key)
        rows = sorted(((s.labels, s) for s in self._series.values()), key=lambda r: r[0])
        # Pieces are joined once into the response, so the long label text is copied only once.
        out: list[bytes] = [_HEADER["istio_requests_total"]]
        for labels, s in rows:
            out += (b"istio_requests_total{", labels, b"} %d\n" % s.count)
        # Envoy emits counters first, then histograms in name order.
        for name, counts, total in (
            ("istio_request_bytes", "request", "request_sum"),
            ("istio_request_duration_milliseconds", "duration", "duration_sum"),
            ("istio_response_bytes", "response", "response_sum"),
        ):
            out.append(_HEADER[name])
            bucket, total_head, count_head = (f"{name}{part}{{".encode() for part in ("_bucket", "_sum", "_count"))
            for labels, s in rows:
                running = 0
                for le, n in zip(_LE, getattr(s, counts), strict=True):
                    running += n
                    out += (bucket, labels, le, b"%d\n" % running)
                out += (total_head, labels, b"} ", _number(getattr(s, total)), count_head, labels)
                out.append(b"} %d\n" % s.count)
        return b"".join(out)


def _render_labels(key: tuple) -> bytes:
    (
        reporter,
        src,
        src_principal,
        dst,
        dst_principal,
        service,
        service_name,
        code,
        flags,
        policy,
        proto,
        grpc,
    ) = key
    s_workload, s_canon, s_rev, s_ns, s_app, s_version, s_cluster = src
    d_workload, d_canon, d_rev, d_ns, d_app, d_version, d_cluster = dst
    values = (
        reporter,
        s_workload,
        s_canon,
        s_rev,
        s_ns,
        src_principal,
        s_app,
        s_version,
        s_cluster,
        d_workload,
        d_ns,
        dst_principal,
        d_app,
        d_version,
        service,
        d_canon,
        d_rev,
        service_name,
        _service_namespace(service, d_ns),
        d_cluster,
        proto,
        str(code),
        grpc,
        flags,
        policy,
    )
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(ISTIO_LABELS, values, strict=True)).encode()


def _service_namespace(service: str, workload_namespace: str) -> str:
    """destination_service_namespace: the Service's namespace, known from its FQDN even when no workload
    answered (an injected fault, no route), else the destination workload's namespace."""
    parts = service.split(".")
    if len(parts) >= 3 and parts[2] == "svc":
        return parts[1]
    return workload_namespace


def _escape(value: str) -> str:
    """Label value escaping of the text format: backslash, double quote and line feed."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _number(value: float) -> bytes:
    """A sample value as Envoy prints it: whole numbers without a decimal point."""
    if isinstance(value, int) or value.is_integer():
        return b"%d\n" % value
    return repr(value).encode() + b"\n"
