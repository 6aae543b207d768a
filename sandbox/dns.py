"""Service discovery as cluster DNS plus kube-proxy would give it: names to ready pod addresses."""

from __future__ import annotations

import ipaddress

from sandbox import catalog
from sandbox.store import Store

SERVICES = catalog.get("", "services")
ENDPOINTS = catalog.get("", "endpoints")
PODS = catalog.get("", "pods")
CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def split_service_host(host: str, namespace: str) -> tuple[str | None, str, str] | None:
    """`kvstore`, `kvstore.lab`, `kvstore.lab.svc.cluster.local`, `kvstore-0.kvstore.lab.svc` →
    (pod or None, service, namespace); None for names outside the cluster."""
    host = host.rstrip(".").lower()
    for suffix in CLUSTER_SUFFIXES:
        if host.endswith(suffix):
            host = host[: -len(suffix)]
            break
    parts = host.split(".")
    if len(parts) == 1:
        return None, parts[0], namespace
    if len(parts) == 2:
        return None, parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return None


def service_target(service: dict, port: int) -> tuple[dict | None, object]:
    """The service port entry matching `port` and its targetPort (a number or a port name)."""
    for p in service.get("spec", {}).get("ports") or []:
        if p.get("port") == port:
            return p, p.get("targetPort", port)
    return None, port


def endpoint_addresses(store: Store, namespace: str, service: dict, port: int) -> list[tuple[str, int]]:
    """Ready (ip, port) pairs behind `service` for a client that asked for `port`."""
    name = service["metadata"]["name"]
    ep = store.get(ENDPOINTS, namespace, name)
    if not ep:
        return []
    headless = service.get("spec", {}).get("clusterIP") == "None"
    sp, _ = service_target(service, port)
    if sp is None and not headless:
        return []
    want_name = (sp or {}).get("name")
    out = []
    for subset in ep.get("subsets") or []:
        ports = subset.get("ports") or []
        chosen = None
        for p in ports:
            if headless and p.get("port") == port:
                chosen = p["port"]
            elif not headless and (p.get("name") == want_name or len(ports) == 1):
                chosen = p["port"]
            if chosen:
                break
        if chosen is None and headless:
            chosen = port
        if chosen is None:
            continue
        out.extend((a["ip"], chosen) for a in subset.get("addresses") or [])
    return out


def resolve(store: Store, host: str, port: int, namespace: str) -> list[tuple[str, int]] | None:
    """Addresses for host:port as seen from a pod in `namespace`.

    Returns None when the name does not exist (like NXDOMAIN), and an empty list when the Service
    exists but has no ready endpoints.
    """
    if is_ip(host):
        for svc in store.list(SERVICES):
            if svc.get("spec", {}).get("clusterIP") == host:
                return endpoint_addresses(store, svc["metadata"]["namespace"], svc, port)
        return [(host, port)]
    parsed = split_service_host(host, namespace)
    if parsed is None:
        return None
    pod_name, svc_name, ns = parsed
    svc = store.get(SERVICES, ns, svc_name)
    if svc is None:
        return None
    if pod_name:
        pod = store.get(PODS, ns, pod_name)
        ip = (pod or {}).get("status", {}).get("podIP")
        return [(ip, port)] if ip else None
    return endpoint_addresses(store, ns, svc, port)
