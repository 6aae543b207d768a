"""The write path shared by the HTTP API and the controllers: admission, allocation, storage.

Everything that a real API server does synchronously before an object is persisted lives here:
validation, defaulting, sidecar injection for new pods, ClusterIP and node-port allocation for
Services, and namespace lifecycle rules.
"""

from __future__ import annotations

import copy

from sandbox import admission, catalog
from sandbox.catalog import ResourceType
from sandbox.network import Network
from sandbox.store import Store, now_iso

NAMESPACES = catalog.get("", "namespaces")
PODS = catalog.get("", "pods")
SERVICES = catalog.get("", "services")


class ApiError(Exception):
    """An error the API answers with a Status body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}


def not_found(rt: ResourceType, name: str) -> ApiError:
    details = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', details)


def invalid(rt: ResourceType, name: str, e: admission.Invalid) -> ApiError:
    causes = [{"reason": _cause_reason(m), "message": m, "field": f} for f, m in e.causes]
    text = ", ".join(f"{f}: {m}" for f, m in e.causes)
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    details = {"name": name, "kind": rt.kind, "causes": causes}
    if rt.group:
        details["group"] = rt.group
    if len(e.causes) > 1:
        text = f"[{text}]"
    message = e.message or f'{kind} "{name}" is invalid: {text}'
    return ApiError(422, "Invalid", message, details)


def _cause_reason(message: str) -> str:
    head = message.split(":", 1)[0]
    return {
        "Required value": "FieldValueRequired",
        "Duplicate value": "FieldValueDuplicate",
        "Unsupported value": "FieldValueNotSupported",
        "Forbidden": "FieldValueForbidden",
    }.get(head, "FieldValueInvalid")


class Registry:
    def __init__(self, store: Store, network: Network) -> None:
        self.store = store
        self.network = network

    # ---- namespace rules -------------------------------------------------------------------
    def check_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(NAMESPACES, None, namespace or "")
        if ns is None:
            raise ApiError(
                404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
            )
        if ns.get("metadata", {}).get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being terminated",
                {"name": namespace, "kind": "namespaces"},
            )

    # ---- create / update -------------------------------------------------------------------
    def create(self, rt: ResourceType, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        name = meta.get("name", "")
        try:
            admission.validate(rt, obj)
        except admission.Invalid as e:
            raise invalid(rt, name, e) from None
        self.check_namespace(rt, meta.get("namespace"))
        if self.store.get(rt, meta.get("namespace"), name) is not None:
            details = {"name": name, "kind": rt.plural}
            if rt.group:
                details["group"] = rt.group
            raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', details)
        meta.pop("resourceVersion", None)
        meta.pop("uid", None)
        meta.pop("deletionTimestamp", None)
        admission.default(rt, obj)
        if rt is PODS:
            ns = self.store.get(NAMESPACES, None, meta.get("namespace"))
            if admission.wants_sidecar(ns, obj):
                admission.inject_sidecar(obj)
            obj.setdefault("spec", {}).setdefault("serviceAccountName", "default")
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        if rt is SERVICES:
            self._allocate_service(obj, None)
        return self.store.create(rt, obj)

    def update(self, rt: ResourceType, obj: dict, *, status_only: bool = False, keep_generation: bool = False) -> dict:
        """Store a full new version of an existing object (PUT, patches, controllers)."""
        meta = obj.setdefault("metadata", {})
        live = self.store.get(rt, meta.get("namespace"), meta.get("name", ""))
        if live is None:
            raise not_found(rt, meta.get("name", ""))
        if status_only:
            new = copy.deepcopy(live)
            new["status"] = obj.get("status", {})
            return self.store.update(rt, new)
        try:
            admission.validate(rt, obj)
        except admission.Invalid as e:
            raise invalid(rt, meta.get("name", ""), e) from None
        if rt.has_status:
            # The main resource ignores status; only /status writes change it.
            if "status" in live:
                obj["status"] = copy.deepcopy(live["status"])
            else:
                obj.pop("status", None)
        lm = live["metadata"]
        if lm.get("deletionTimestamp"):
            meta["deletionTimestamp"] = lm["deletionTimestamp"]
        admission.default(rt, obj)
        if rt is PODS:
            obj["spec"] = _pod_spec_update(live["spec"], obj.get("spec", {}))
        if rt is SERVICES:
            self._allocate_service(obj, live)
        if _same_object(obj, live):
            # Like the real API server, a write that changes nothing is not stored: the resourceVersion stays
            # and watchers see no event (a re-applied lab is quiet).
            return live
        return self.store.update(rt, obj, keep_generation=keep_generation)

    def write_status(self, rt: ResourceType, namespace: str | None, name: str, status: dict) -> dict | None:
        """Controllers' status writes: skipped when nothing changed, so reconciles settle."""
        live = self.store.get(rt, namespace, name)
        if live is None or live.get("status") == status:
            return live
        new = dict(live)
        new["status"] = status
        return self.store.update(rt, new)

    # ---- delete ----------------------------------------------------------------------------
    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> dict:
        live = self.store.get(rt, namespace, name)
        if live is None:
            raise not_found(rt, name)
        if rt is NAMESPACES:
            if name in ("default", "kube-system", "kube-public", "istio-system"):
                raise ApiError(
                    403,
                    "Forbidden",
                    f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    {"name": name, "kind": "namespaces"},
                )
            if live["metadata"].get("deletionTimestamp"):
                return live
            new = copy.deepcopy(live)
            new["metadata"]["deletionTimestamp"] = now_iso()
            new["status"] = {"phase": "Terminating"}
            return self.store.update(rt, new)
        if rt is SERVICES:
            self._release_service(live)
        return self.store.delete(rt, namespace, name)

    # ---- services --------------------------------------------------------------------------
    def _allocate_service(self, obj: dict, live: dict | None) -> None:
        spec = obj["spec"]
        live_spec = (live or {}).get("spec", {})
        stype = spec.get("type", "ClusterIP")
        if stype == "ExternalName":
            spec.pop("clusterIP", None)
        elif spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = (
                live_spec.get("clusterIP")
                if live_spec.get("clusterIP") not in (None, "None")
                else (self.network.services.take())
            )
        if spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        old_node_ports = {p.get("port"): p.get("nodePort") for p in live_spec.get("ports") or []}
        keep: set[int] = set()
        for p in spec.get("ports") or []:
            if stype in ("LoadBalancer", "NodePort"):
                if not p.get("nodePort"):
                    p["nodePort"] = old_node_ports.get(p.get("port")) or self.network.take_node_port()
                else:
                    self.network.reserve_node_port(p["nodePort"])
                keep.add(p["nodePort"])
            else:
                p.pop("nodePort", None)
        for port in old_node_ports.values():
            if port and port not in keep:
                self.network.release_node_port(port)
        if stype != "LoadBalancer":
            obj["status"] = {"loadBalancer": {}}
            spec.pop("allocateLoadBalancerNodePorts", None)
            if stype == "ClusterIP":
                spec.pop("externalTrafficPolicy", None)

    def _release_service(self, live: dict) -> None:
        spec = live.get("spec", {})
        if spec.get("clusterIP") not in (None, "None"):
            self.network.services.release(spec["clusterIP"])
        for p in spec.get("ports") or []:
            if p.get("nodePort"):
                self.network.release_node_port(p["nodePort"])
        for ing in live.get("status", {}).get("loadBalancer", {}).get("ingress") or []:
            self.network.balancers.release(ing.get("ip"))

    def restore_allocations(self) -> None:
        """After loading a snapshot: mark every address and port in use as taken."""
        for svc in self.store.list(SERVICES):
            spec = svc.get("spec", {})
            if spec.get("clusterIP") not in (None, "None"):
                self.network.services.reserve(spec["clusterIP"])
            for p in spec.get("ports") or []:
                if p.get("nodePort"):
                    self.network.reserve_node_port(p["nodePort"])
            for ing in svc.get("status", {}).get("loadBalancer", {}).get("ingress") or []:
                self.network.balancers.reserve(ing.get("ip"))


def _pod_spec_update(live: dict, new: dict) -> dict:
    """Pods are mostly immutable: only container images and a few fields may change."""
    spec = copy.deepcopy(live)
    images = {c.get("name"): c.get("image") for c in new.get("containers") or []}
    for c in spec.get("containers") or []:
        if images.get(c["name"]):
            c["image"] = images[c["name"]]
    for k in ("activeDeadlineSeconds", "tolerations"):
        if k in new:
            spec[k] = new[k]
    return spec


_SERVER_SET = ("uid", "creationTimestamp", "generation", "resourceVersion")


def _same_object(obj: dict, live: dict) -> bool:
    """Whether `obj` equals the stored `live` object once the fields only the server sets are taken from it."""
    meta, live_meta = obj.get("metadata", {}), live.get("metadata", {})
    if obj.keys() != live.keys() or meta.keys() - set(_SERVER_SET) != live_meta.keys() - set(_SERVER_SET):
        return False
    if any(obj[k] != live[k] for k in obj if k != "metadata"):
        return False
    return all(meta[k] == live_meta[k] for k in meta if k not in _SERVER_SET)
