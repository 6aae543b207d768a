"""Who a pod is, as Istio names it: workload, canonical service and revision, identity, mesh membership."""

from __future__ import annotations

from sandbox import catalog
from sandbox.mesh import telemetry
from sandbox.mesh.telemetry import UNKNOWN_PEER, Peer

PODS = catalog.get("", "pods")
SERVICES = catalog.get("", "services")
CLUSTER_ID = telemetry.DEFAULT_CLUSTER


def workload_name(pod: dict) -> str:
    """Istio's workload name: the Deployment (ReplicaSet minus its hash), StatefulSet, Job, or the pod."""
    meta = pod["metadata"]
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "ReplicaSet":
            labels = meta.get("labels") or {}
            suffix = labels.get("pod-template-hash")
            name = ref["name"]
            if suffix and name.endswith("-" + suffix):
                return name[: -len(suffix) - 1]
            return name.rsplit("-", 1)[0]
        if ref.get("kind") in ("StatefulSet", "Job", "DaemonSet", "Deployment"):
            return ref["name"]
    return meta["name"]


def has_sidecar(pod: dict) -> bool:
    return any(
        c.get("name") == "istio-proxy" for c in pod.get("spec", {}).get("containers") or []
    ) and "gateway.networking.k8s.io/gateway-name" not in (pod["metadata"].get("labels") or {})


def in_mesh(pod: dict) -> bool:
    """Sidecar pods and gateway proxies both hold mesh identities."""
    return any(c.get("name") == "istio-proxy" for c in pod.get("spec", {}).get("containers") or [])


def peer_for_pod(pod: dict) -> Peer:
    return telemetry.peer_for_pod(pod, workload_name(pod), CLUSTER_ID)


def peer_or_unknown(pod: dict | None) -> Peer:
    return peer_for_pod(pod) if pod is not None else UNKNOWN_PEER
