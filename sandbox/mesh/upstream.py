"""Choosing and calling an upstream: endpoints with their pods, one HTTP exchange, mesh headers.

Shared by the sidecar's outbound side and the ingress gateway, which both act as Istio's client-side
proxy: pick a ready endpoint (optionally of a subset), speak mutual TLS to meshed pods, and tell the
destination's sidecar who is calling (Istio's metadata exchange, here one header).
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from multidict import CIMultiDict, MultiDict

from sandbox import catalog, dns
from sandbox.mesh import http1
from sandbox.mesh.telemetry import Peer
from sandbox.network import Network
from sandbox.proxies import HOP_BY_HOP
from sandbox.selectors import matches_labels
from sandbox.store import Store

ENDPOINTS = catalog.get("", "endpoints")
PODS = catalog.get("", "pods")
PEER_HEADER = "x-sandbox-peer"  # the caller's workload metadata, as Istio's x-envoy-peer-metadata
SERVICE_HEADER = "x-sandbox-destination-service"  # the Service the caller routed to
MESH_HEADERS = {PEER_HEADER, SERVICE_HEADER}
_STRIPPED = frozenset(HOP_BY_HOP | MESH_HEADERS)
_STRIPPED_LENGTHS = frozenset(len(name) for name in _STRIPPED)  # to lower only names that may be stripped


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    pod: dict | None


def endpoints(
    store: Store, namespace: str, service: dict, port: int, subset_labels: dict | None = None
) -> list[Endpoint]:
    """Ready endpoints of `service` for a client asking for `port`, with their pods."""
    addrs = dns.endpoint_addresses(store, namespace, service, port)
    if not addrs:
        return []
    ep = store.get(ENDPOINTS, namespace, service["metadata"]["name"]) or {}
    pods_by_ip: dict[str, str] = {}
    for subset in ep.get("subsets") or []:
        for a in subset.get("addresses") or []:
            ref = a.get("targetRef") or {}
            if ref.get("kind") == "Pod":
                pods_by_ip[a["ip"]] = ref["name"]
    out = []
    for ip, p in addrs:
        pod = store.get(PODS, namespace, pods_by_ip.get(ip, ""))
        if subset_labels and not (pod and matches_labels(subset_labels, pod["metadata"].get("labels") or {})):
            continue
        out.append(Endpoint(ip, p, pod))
    return out


def encode_peer(peer: Peer) -> str:
    return json.dumps(
        [
            peer.workload,
            peer.namespace,
            peer.app,
            peer.version,
            peer.canonical_service,
            peer.canonical_revision,
            peer.cluster,
        ],
        separators=(",", ":"),
    )


def decode_peer(value: str | None, principal: str) -> Peer | None:
    if not value:
        return None
    try:
        w, ns, app, version, cs, cr, cluster = json.loads(value)
    except (ValueError, TypeError):
        return None
    return Peer(
        workload=w,
        namespace=ns,
        principal=principal,
        app=app,
        version=version,
        canonical_service=cs,
        canonical_revision=cr,
        cluster=cluster,
    )


@dataclass
class Exchange:
    status: int  # 0 when no response came back
    body: bytes
    headers: list[tuple[str, str]]
    flags: str  # Envoy response flags: "-", "UF" (connect failure), "UT" (timeout)...
    duration_ms: float


async def call(
    pool: http1.ClientPool,
    network: Network,
    method: str,
    ep: Endpoint,
    path_qs: str,
    headers: list[tuple[str, str]],
    body: bytes,
    tls: ssl.SSLContext | None,
    timeout: float | None,
) -> Exchange:
    """One HTTP exchange with an endpoint; connection failures and timeouts become flagged results."""
    ip, port = network.real(ep.ip, ep.port)
    start = time.perf_counter()
    try:
        r = await pool.request(ip, port, method, path_qs, headers, body, ssl=tls, timeout=timeout)
        return Exchange(r.status, r.body, strip(r.headers), "-", (time.perf_counter() - start) * 1000)
    except TimeoutError:
        return Exchange(504, b"upstream request timeout", [], "UT", (time.perf_counter() - start) * 1000)
    except (http1.ConnectError, http1.ProtocolError, ssl.SSLError, OSError):
        return Exchange(
            503,
            b"upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            [],
            "UF",
            (time.perf_counter() - start) * 1000,
        )


def strip(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers a proxy passes on: without hop-by-hop, framing and the mesh's own headers."""
    return [(k, v) for k, v in headers if len(k) not in _STRIPPED_LENGTHS or k.lower() not in _STRIPPED]


def forward_headers(request: http1.Request) -> list[tuple[str, str]]:
    return strip(request.headers)


def split_target(target: str) -> tuple[str, str]:
    """(path, query string) of an origin-form request target."""
    path, _, query = target.partition("?")
    return path or "/", query


def header_map(headers: list[tuple[str, str]]) -> CIMultiDict:
    return CIMultiDict(headers)


def query_map(query: str) -> MultiDict:
    return MultiDict(parse_qsl(query, keep_blank_values=True))


def text(status: int, message: str = "", headers: list[tuple[str, str]] | None = None) -> http1.Response:
    return http1.Response(status, [("Content-Type", "text/plain"), *(headers or [])], message.encode())


def response(ex: Exchange) -> http1.Response:
    headers = list(ex.headers)
    if ex.flags != "-" and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "text/plain"))
    return http1.Response(ex.status or 503, headers, ex.body)
