"""What the graph needs to know from the cluster itself, read with the official `kubernetes` client.

One `Snapshot` per namespace: its workloads (with readiness and whether their pods carry a sidecar),
Services, and the routing objects that earn badges (VirtualServices, DestinationRules, Istio and
Gateway API Gateways, HTTPRoutes). The client is synchronous, so reads run in a worker thread; a
`ClusterReader` keeps the latest snapshot for a few seconds because every graph refresh and every
embedded scrape round asks for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kubernetes import client

# The client imports its API classes on first use, which takes seconds; pay that when this module loads,
# not during the first graph refresh.
from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from meshgraph.sources import Target

SIDECAR = "istio-proxy"
METRICS_PORT = 15020
METRICS_PATH = "/stats/prometheus"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
REQUEST_TIMEOUT = (3.0, 5.0)  # (connect, read) seconds per call; a refresh waits for them

# (group, version, plural) of the custom resources read; a CRD missing from the cluster reads as empty.
VIRTUAL_SERVICES = ("networking.istio.io", "v1", "virtualservices")
DESTINATION_RULES = ("networking.istio.io", "v1", "destinationrules")
ISTIO_GATEWAYS = ("networking.istio.io", "v1", "gateways")
K8S_GATEWAYS = ("gateway.networking.k8s.io", "v1", "gateways")
HTTP_ROUTES = ("gateway.networking.k8s.io", "v1", "httproutes")


@dataclass
class Workload:
    """A workload as Istio names it (Deployment, StatefulSet, ...), with Kiali's readiness numbers."""

    name: str
    kind: str
    labels: dict[str, str] = field(default_factory=dict)  # of its pods
    desired: int = 0
    current: int = 0  # pods that exist
    available: int = 0  # pods that are ready
    pending: int = 0
    sidecars: int = 0  # pods with an istio-proxy container


@dataclass
class Pod:
    name: str
    workload: str
    ip: str
    running: bool
    has_sidecar: bool


@dataclass
class Snapshot:
    namespace: str
    workloads: dict[str, Workload] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    services: dict[str, dict] = field(default_factory=dict)  # name -> metadata.labels
    virtual_services: list[dict] = field(default_factory=list)
    destination_rules: list[dict] = field(default_factory=list)
    istio_gateways: list[dict] = field(default_factory=list)
    k8s_gateways: list[dict] = field(default_factory=list)
    http_routes: list[dict] = field(default_factory=list)
    error: str = ""  # why the snapshot is incomplete (cluster unreachable, ...)
    taken: float = 0.0


def workload_name(pod: dict) -> str:
    """Istio's workload name for a pod: its Deployment (ReplicaSet minus hash), StatefulSet, Job, ... or itself."""
    meta = pod["metadata"]
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "ReplicaSet":
            suffix = (meta.get("labels") or {}).get("pod-template-hash")
            name = ref["name"]
            if suffix and name.endswith("-" + suffix):
                return name[: -len(suffix) - 1]
            return name.rsplit("-", 1)[0]
        if ref.get("kind") in ("StatefulSet", "Job", "DaemonSet", "Deployment"):
            return ref["name"]
    return meta["name"]


def _pod_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _custom(api: client.ApiClient, namespace: str, resource: tuple[str, str, str]) -> list[dict]:
    group, version, plural = resource
    try:
        answer = CustomObjectsApi(api).list_namespaced_custom_object(
            group, version, namespace, plural, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:  # the CRD (or this version of it) is not installed
            return []
        raise
    return answer.get("items") or []


def _plain(call: Callable, namespace: str) -> list[dict]:
    """List built-in objects as plain dicts (the JSON the API sent), not the client's model classes."""
    response = call(namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
    return json.loads(response.data).get("items") or []


def read_snapshot(api: client.ApiClient, namespace: str) -> Snapshot:
    """Read a namespace's workloads and mesh configuration; failures end up in `error`, never raised."""
    snap = Snapshot(namespace, taken=time.time())
    core, apps = CoreV1Api(api), AppsV1Api(api)
    try:
        pods = _plain(core.list_namespaced_pod, namespace)
        controllers = [("Deployment", item) for item in _plain(apps.list_namespaced_deployment, namespace)] + [
            ("StatefulSet", item) for item in _plain(apps.list_namespaced_stateful_set, namespace)
        ]
        services = _plain(core.list_namespaced_service, namespace)
        snap.virtual_services = _custom(api, namespace, VIRTUAL_SERVICES)
        snap.destination_rules = _custom(api, namespace, DESTINATION_RULES)
        snap.istio_gateways = _custom(api, namespace, ISTIO_GATEWAYS)
        snap.k8s_gateways = _custom(api, namespace, K8S_GATEWAYS)
        snap.http_routes = _custom(api, namespace, HTTP_ROUTES)
    except ApiException as exc:
        snap.error = f"the cluster refused to list {namespace}: {exc.status} {exc.reason}"
        return snap
    except Exception as exc:  # urllib3 and socket errors: the cluster is unreachable
        # urllib3 wraps the cause in a long message; its last part says what happened.
        reason = str(getattr(exc, "reason", None) or exc).rsplit(": ", 1)[-1]
        snap.error = f"the cluster at {api.configuration.host} is unreachable ({reason})"
        return snap
    for kind, item in controllers:
        # Readiness is counted from the pods below, the same way for every kind.
        meta, spec = item["metadata"], item.get("spec") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        snap.workloads[meta["name"]] = Workload(meta["name"], kind, dict(labels), desired=spec.get("replicas", 1))
    for item in pods:
        meta, status = item["metadata"], item.get("status") or {}
        name = workload_name(item)
        has_sidecar = any(c.get("name") == SIDECAR for c in (item.get("spec") or {}).get("containers") or [])
        phase = status.get("phase")
        snap.pods.append(Pod(meta["name"], name, status.get("podIP") or "", phase == "Running", has_sidecar))
        workload = snap.workloads.get(name)
        if workload is None:  # a bare pod is its own workload
            workload = snap.workloads[name] = Workload(name, "Pod", dict(meta.get("labels") or {}), desired=1)
        if not workload.labels:
            workload.labels = dict(meta.get("labels") or {})
        if meta.get("deletionTimestamp"):
            continue
        workload.current += 1
        workload.available += phase == "Running" and _pod_ready(item)
        workload.pending += phase == "Pending"
        workload.sidecars += has_sidecar
    snap.services = {s["metadata"]["name"]: dict(s["metadata"].get("labels") or {}) for s in services}
    return snap


def scrape_targets(snap: Snapshot, address_map: dict[str, str] | None = None) -> list[Target]:
    """The metrics endpoints of the namespace's running proxies (sidecars and gateways)."""
    out = []
    for pod in snap.pods:
        if pod.has_sidecar and pod.running and pod.ip:
            address = (address_map or {}).get(pod.ip, f"{pod.ip}:{METRICS_PORT}")
            out.append(Target(snap.namespace, pod.name, f"http://{address}{METRICS_PATH}"))
    return out


class Reader(Protocol):
    async def snapshot(self) -> Snapshot: ...


class UnavailableCluster:
    """A Reader for a cluster that cannot even be configured: every snapshot carries the reason."""

    def __init__(self, namespace: str, error: str) -> None:
        self.namespace = namespace
        self.error = error

    async def snapshot(self) -> Snapshot:
        return Snapshot(self.namespace, error=self.error, taken=time.time())


class ClusterReader:
    """The latest snapshot of one namespace, re-read when older than `max_age` seconds."""

    def __init__(self, api: client.ApiClient, namespace: str, max_age: float = 4.0) -> None:
        self.api = api
        self.namespace = namespace
        self.max_age = max_age
        self._snapshot: Snapshot | None = None
        self._reading: asyncio.Task[Snapshot] | None = None

    async def snapshot(self) -> Snapshot:
        current = self._snapshot
        if current is not None and time.time() - current.taken < self.max_age:
            return current
        if self._reading is None:  # concurrent callers share one read
            self._reading = asyncio.create_task(asyncio.to_thread(read_snapshot, self.api, self.namespace))
        try:
            self._snapshot = await asyncio.shield(self._reading)
        finally:
            if self._reading is not None and self._reading.done():
                self._reading = None
        return self._snapshot
