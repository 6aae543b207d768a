"""Controllers: turn desired state into objects and status, as kube-controller-manager and Istio do.

Store events enqueue reconcile keys; one loop runs them. Every reconcile is idempotent and writes
only what changed, so the loop settles.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable

from sandbox import catalog, selectors
from sandbox.registry import ApiError, Registry
from sandbox.store import Event, Store, now_iso

log = logging.getLogger(__name__)

NS = catalog.get("", "namespaces")
PODS = catalog.get("", "pods")
SERVICES = catalog.get("", "services")
ENDPOINTS = catalog.get("", "endpoints")
SA = catalog.get("", "serviceaccounts")
PVC = catalog.get("", "persistentvolumeclaims")
DEPLOY = catalog.get("apps", "deployments")
RS = catalog.get("apps", "replicasets")
STS = catalog.get("apps", "statefulsets")
JOBS = catalog.get("batch", "jobs")
GWC = catalog.get("gateway.networking.k8s.io", "gatewayclasses")
GW = catalog.get("gateway.networking.k8s.io", "gateways")
ROUTES = catalog.get("gateway.networking.k8s.io", "httproutes")

HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
ISTIO_CONTROLLER = "istio.io/gateway-controller"
PROXY_IMAGE = "docker.io/istio/proxyv2:1.28.0"


def safe_hash(data: object, length: int = 10) -> str:
    """A stable short hash in Kubernetes' 'safe' alphabet (no vowels, no look-alikes)."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).digest()
    return "".join(HASH_ALPHABET[b % len(HASH_ALPHABET)] for b in digest[:length])


def rand_suffix(n: int = 5) -> str:
    return "".join(random.choice(HASH_ALPHABET) for _ in range(n))


def owner_ref(obj: dict, kind: str, api_version: str) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: dict, uid: str) -> bool:
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def pod_ready(pod: dict) -> bool:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def cond(kind: str, ok: bool | str, reason: str, message: str, **extra) -> dict:
    status = ok if isinstance(ok, str) else ("True" if ok else "False")
    now = now_iso()
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        **extra,
    }


def merge_conditions(old: list[dict] | None, new: list[dict]) -> list[dict]:
    """Keep transition times of conditions whose status did not change, so status settles."""
    before = {c["type"]: c for c in old or []}
    out = []
    for c in new:
        prev = before.get(c["type"])
        if prev and prev.get("status") == c["status"] and prev.get("reason") == c.get("reason"):
            c = {
                **c,
                "lastTransitionTime": prev.get("lastTransitionTime"),
                "lastUpdateTime": prev.get("lastUpdateTime", c.get("lastUpdateTime")),
            }
            if "lastUpdateTime" not in prev:
                c.pop("lastUpdateTime", None)
        out.append(c)
    return out


class Controllers:
    def __init__(self, store: Store, registry: Registry, on_service: Callable[[str, str], Awaitable[None]]) -> None:
        self.store = store
        self.reg = registry
        self.on_service = on_service
        self._pending: dict[tuple, Callable[[], object]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        store.add_listener(self._on_event)

    # ---- queue -----------------------------------------------------------------------------
    def enqueue(self, key: tuple, fn: Callable[[], object]) -> None:
        self._pending[key] = fn
        self._wake.set()

    async def start(self) -> None:
        for rt, obj in list(self.store.all_objects()):
            self._on_event(Event(self.store.rv, "ADDED", rt, obj))
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until nothing is queued (used at start-up and in tests)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (self._pending or self._busy) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)

    _busy = False

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                key, fn = next(iter(self._pending.items()))
                del self._pending[key]
                self._busy = True
                try:
                    result = fn()
                    if asyncio.iscoroutine(result):
                        await result
                except ApiError as e:
                    log.debug("reconcile %s: %s", key, e.message)
                except Exception:
                    log.exception("reconcile %s failed", key)
                finally:
                    self._busy = False
                await asyncio.sleep(0)

    def _on_event(self, ev: Event) -> None:
        rt, obj = ev.rt, ev.obj
        meta = obj["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        if ev.type == "DELETED":
            self.enqueue(("gc", meta["uid"]), lambda: self.collect_garbage(ns, meta["uid"]))
        if rt is DEPLOY:
            self.enqueue(("deploy", ns, name), lambda: self.reconcile_deployment(ns, name))
        elif rt is RS:
            self.enqueue(("rs", ns, name), lambda: self.reconcile_replicaset(ns, name))
            self._enqueue_owner(obj)
        elif rt is STS:
            self.enqueue(("sts", ns, name), lambda: self.reconcile_statefulset(ns, name))
        elif rt is JOBS:
            self.enqueue(("job", ns, name), lambda: self.reconcile_job(ns, name))
        elif rt is PODS:
            self._enqueue_owner(obj)
            self.enqueue(("endpoints-ns", ns), lambda: self.reconcile_endpoints_in(ns))
        elif rt is SERVICES:
            self.enqueue(("endpoints", ns, name), lambda: self.reconcile_endpoints(ns, name))
            self.enqueue(("svc", ns, name), lambda: self.on_service(ns, name))
            if name.endswith("-istio") or ev.type == "MODIFIED":
                self.enqueue(("gws-ns", ns), lambda: self.reconcile_gateways_in(ns))
        elif rt is ENDPOINTS:
            pass
        elif rt is PVC:
            self.enqueue(("pvc", ns, name), lambda: self.reconcile_pvc(ns, name))
        elif rt is NS:
            if meta.get("deletionTimestamp"):
                self.enqueue(("ns-delete", name), lambda: self.finalize_namespace(name))
        elif rt is GWC:
            self.enqueue(("gwc", name), lambda: self.reconcile_gatewayclass(name))
        elif rt is GW or rt is ROUTES:
            self.enqueue(("gws-ns", ns), lambda: self.reconcile_gateways_in(ns))

    def _enqueue_owner(self, obj: dict) -> None:
        ns = obj["metadata"].get("namespace")
        for ref in obj["metadata"].get("ownerReferences") or []:
            kind, oname = ref.get("kind"), ref.get("name")
            if kind == "ReplicaSet":
                self.enqueue(("rs", ns, oname), lambda n=oname: self.reconcile_replicaset(ns, n))
            elif kind == "Deployment":
                self.enqueue(("deploy", ns, oname), lambda n=oname: self.reconcile_deployment(ns, n))
            elif kind == "StatefulSet":
                self.enqueue(("sts", ns, oname), lambda n=oname: self.reconcile_statefulset(ns, n))
            elif kind == "Job":
                self.enqueue(("job", ns, oname), lambda n=oname: self.reconcile_job(ns, n))

    # ---- garbage collection and namespaces ---------------------------------------------------
    def collect_garbage(self, ns: str | None, uid: str) -> None:
        for rt in (RS, PODS, DEPLOY, SERVICES, SA, JOBS):
            for obj in list(self.store.list(rt, ns)):
                if owned_by(obj, uid):
                    self.reg.delete(rt, ns, obj["metadata"]["name"])

    def finalize_namespace(self, name: str) -> None:
        for rt in catalog.RESOURCES:
            if rt.namespaced:
                for obj in list(self.store.list(rt, name)):
                    try:
                        self.reg.delete(rt, name, obj["metadata"]["name"])
                    except ApiError:
                        pass
        self.store.delete(NS, None, name)

    # ---- Deployments and ReplicaSets ---------------------------------------------------------
    def reconcile_deployment(self, ns: str, name: str) -> None:
        d = self.store.get(DEPLOY, ns, name)
        if d is None:
            return
        spec = d["spec"]
        desired = spec.get("replicas", 1)
        tpl = spec.get("template", {})
        phash = safe_hash(tpl)
        rs_name = f"{name}-{phash}"
        uid = d["metadata"]["uid"]
        owned = [rs for rs in self.store.list(RS, ns) if owned_by(rs, uid)]
        new_rs = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        revisions = [
            int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "0")) for rs in owned
        ]
        if new_rs is None:
            labels = {**(tpl.get("metadata", {}).get("labels") or {}), "pod-template-hash": phash}
            sel = copy.deepcopy(spec.get("selector") or {})
            sel.setdefault("matchLabels", {})["pod-template-hash"] = phash
            template = copy.deepcopy(tpl)
            template.setdefault("metadata", {})["labels"] = labels
            new_rs = self.reg.create(
                RS,
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": rs_name,
                        "namespace": ns,
                        "labels": labels,
                        "annotations": {
                            "deployment.kubernetes.io/revision": str(max(revisions, default=0) + 1),
                            "deployment.kubernetes.io/desired-replicas": str(desired),
                        },
                        "ownerReferences": [owner_ref(d, "Deployment", "apps/v1")],
                    },
                    "spec": {"replicas": desired, "selector": sel, "template": template},
                },
            )
            owned.append(new_rs)
        elif new_rs["spec"].get("replicas") != desired:
            new_rs = self.reg.update(RS, {**copy.deepcopy(new_rs), "spec": {**new_rs["spec"], "replicas": desired}})
        new_ready = new_rs.get("status", {}).get("readyReplicas", 0)
        for rs in owned:
            if rs is not new_rs and rs["metadata"]["name"] != rs_name and rs["spec"].get("replicas", 0) > 0:
                if new_ready >= desired:
                    self.reg.update(RS, {**copy.deepcopy(rs), "spec": {**rs["spec"], "replicas": 0}})
        owned = [rs for rs in self.store.list(RS, ns) if owned_by(rs, uid)]
        total = sum(rs.get("status", {}).get("replicas", 0) for rs in owned)
        ready = sum(rs.get("status", {}).get("readyReplicas", 0) for rs in owned)
        cur = self.store.get(RS, ns, rs_name) or new_rs
        updated = cur.get("status", {}).get("replicas", 0)
        done = updated >= desired and total <= updated and ready >= updated
        status = {
            "observedGeneration": d["metadata"]["generation"],
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        if total - ready > 0:
            status["unavailableReplicas"] = total - ready
        for k in ("readyReplicas", "availableReplicas"):
            if not status[k]:
                del status[k]
        available = ready >= desired
        conditions = [
            cond(
                "Available",
                available,
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            cond(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if done
                else f'ReplicaSet "{rs_name}" is progressing.',
            ),
        ]
        status["conditions"] = merge_conditions(d.get("status", {}).get("conditions"), conditions)
        self.reg.write_status(DEPLOY, ns, name, status)

    def reconcile_replicaset(self, ns: str, name: str) -> None:
        rs = self.store.get(RS, ns, name)
        if rs is None:
            return
        uid = rs["metadata"]["uid"]
        pods = [p for p in self.store.list(PODS, ns) if owned_by(p, uid)]
        desired = rs["spec"].get("replicas", 1)
        tpl = rs["spec"].get("template", {})
        for _ in range(desired - len(pods)):
            pods.append(
                self._create_pod_from(
                    tpl, ns, f"{name}-{rand_suffix()}", rs, "ReplicaSet", "apps/v1", generate_name=f"{name}-"
                )
            )
        if len(pods) > desired:
            pods.sort(key=lambda p: (pod_ready(p), p["metadata"]["creationTimestamp"]))
            for p in pods[: len(pods) - desired]:
                self.reg.delete(PODS, ns, p["metadata"]["name"])
            pods = pods[len(pods) - desired :]
        ready = sum(1 for p in pods if pod_ready(p))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"]["generation"],
        }
        for k in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if not status[k]:
                del status[k]
        self.reg.write_status(RS, ns, name, status)

    def _create_pod_from(
        self,
        tpl: dict,
        ns: str,
        pod_name: str,
        owner: dict,
        kind: str,
        api_version: str,
        generate_name: str | None = None,
        extra_labels: dict | None = None,
        **spec_extra,
    ) -> dict:
        meta = copy.deepcopy(tpl.get("metadata") or {})
        meta.update({"name": pod_name, "namespace": ns, "ownerReferences": [owner_ref(owner, kind, api_version)]})
        if generate_name:
            meta["generateName"] = generate_name
        if extra_labels:
            meta["labels"] = {**(meta.get("labels") or {}), **extra_labels}
        spec = copy.deepcopy(tpl.get("spec") or {})
        spec.update(spec_extra)
        return self.reg.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})

    # ---- StatefulSets ----------------------------------------------------------------------
    def reconcile_statefulset(self, ns: str, name: str) -> None:
        sts = self.store.get(STS, ns, name)
        if sts is None:
            return
        spec = sts["spec"]
        desired = spec.get("replicas", 1)
        tpl = spec.get("template", {})
        revision = f"{name}-{safe_hash(tpl)}"
        uid = sts["metadata"]["uid"]
        pods = {p["metadata"]["name"]: p for p in self.store.list(PODS, ns) if owned_by(p, uid)}
        for i in range(desired):
            for vct in spec.get("volumeClaimTemplates") or []:
                claim = f"{vct['metadata']['name']}-{name}-{i}"
                if self.store.get(PVC, ns, claim) is None:
                    self.reg.create(
                        PVC,
                        {
                            "apiVersion": "v1",
                            "kind": "PersistentVolumeClaim",
                            "metadata": {
                                "name": claim,
                                "namespace": ns,
                                "labels": (tpl.get("metadata") or {}).get("labels") or {},
                            },
                            "spec": copy.deepcopy(vct.get("spec") or {}),
                        },
                    )
        for pname in list(pods):
            idx = int(pname.rsplit("-", 1)[1]) if pname.rsplit("-", 1)[-1].isdigit() else desired
            if idx >= desired:
                self.reg.delete(PODS, ns, pname)
                del pods[pname]
        # Create in order, each only when the previous ones are ready (OrderedReady).
        for i in range(desired):
            pname = f"{name}-{i}"
            if pname in pods:
                if not pod_ready(pods[pname]) and spec.get("podManagementPolicy") != "Parallel":
                    break
                continue
            tspec = copy.deepcopy(tpl.get("spec") or {})
            volumes = tspec.setdefault("volumes", [])
            for vct in spec.get("volumeClaimTemplates") or []:
                vname = vct["metadata"]["name"]
                volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": f"{vname}-{name}-{i}"}})
            tpl_i = {"metadata": tpl.get("metadata") or {}, "spec": tspec}
            pods[pname] = self._create_pod_from(
                tpl_i,
                ns,
                pname,
                sts,
                "StatefulSet",
                "apps/v1",
                extra_labels={
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pname,
                    "apps.kubernetes.io/pod-index": str(i),
                },
                hostname=pname,
                subdomain=spec.get("serviceName", ""),
            )
            if spec.get("podManagementPolicy") != "Parallel":
                break
        # Rolling update: replace the highest outdated pod once every pod is ready.
        outdated = sorted(
            (p for p in pods.values() if p["metadata"].get("labels", {}).get("controller-revision-hash") != revision),
            key=lambda p: p["metadata"]["name"],
            reverse=True,
        )
        if outdated and len(pods) == desired and all(pod_ready(p) for p in pods.values()):
            self.reg.delete(PODS, ns, outdated[0]["metadata"]["name"])
            del pods[outdated[0]["metadata"]["name"]]
        ready = sum(1 for p in pods.values() if pod_ready(p))
        updated = sum(
            1 for p in pods.values() if p["metadata"].get("labels", {}).get("controller-revision-hash") == revision
        )
        current_rev = sts.get("status", {}).get("currentRevision") or revision
        if updated == desired and len(pods) == desired:
            current_rev = revision
        status = {
            "observedGeneration": sts["metadata"]["generation"],
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": len(pods) if current_rev == revision else len(pods) - updated,
            "updatedReplicas": updated,
            "currentRevision": current_rev,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        if not ready:
            del status["readyReplicas"]
        self.reg.write_status(STS, ns, name, status)

    def reconcile_pvc(self, ns: str, name: str) -> None:
        pvc = self.store.get(PVC, ns, name)
        if pvc is None or pvc.get("status", {}).get("phase") == "Bound":
            return
        spec = pvc.get("spec", {})
        if not spec.get("volumeName"):
            new = copy.deepcopy(pvc)
            new["spec"]["volumeName"] = f"pvc-{pvc['metadata']['uid']}"
            pvc = self.reg.update(PVC, new, keep_generation=True)  # binding is not a spec change by the user
        capacity = (spec.get("resources") or {}).get("requests", {}).get("storage", "1Gi")
        self.reg.write_status(
            PVC,
            ns,
            name,
            {
                "phase": "Bound",
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "capacity": {"storage": capacity},
            },
        )

    # ---- Jobs ------------------------------------------------------------------------------
    def reconcile_job(self, ns: str, name: str) -> None:
        job = self.store.get(JOBS, ns, name)
        if job is None:
            return
        status = copy.deepcopy(job.get("status") or {})
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            return
        uid = job["metadata"]["uid"]
        pods = [p for p in self.store.list(PODS, ns) if owned_by(p, uid)]
        succeeded = sum(1 for p in pods if p.get("status", {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if p.get("status", {}).get("phase") == "Failed")
        active = len(pods) - succeeded - failed
        status.setdefault("startTime", now_iso())
        backoff = job["spec"].get("backoffLimit", 6)
        if succeeded >= job["spec"].get("completions", 1):
            status["completionTime"] = now_iso()
            status["conditions"] = [
                cond("SuccessCriteriaMet", True, "CompletionsReached", "Reached expected number of succeeded pods"),
                cond("Complete", True, "CompletionsReached", "Reached expected number of succeeded pods"),
            ]
        elif failed > backoff:
            status["conditions"] = [
                cond("FailureTarget", True, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                cond("Failed", True, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            ]
        elif active == 0:
            tpl = job["spec"].get("template", {})
            labels = {
                "batch.kubernetes.io/job-name": name,
                "job-name": name,
                "batch.kubernetes.io/controller-uid": uid,
                "controller-uid": uid,
            }
            self._create_pod_from(
                tpl,
                ns,
                f"{name}-{rand_suffix()}",
                job,
                "Job",
                "batch/v1",
                generate_name=f"{name}-",
                extra_labels=labels,
            )
            active = 1
        status.update({"active": active, "succeeded": succeeded, "failed": failed, "ready": 0})
        for k in ("active", "succeeded", "failed"):
            if not status[k]:
                del status[k]
        self.reg.write_status(JOBS, ns, name, status)

    # ---- Endpoints -------------------------------------------------------------------------
    def reconcile_endpoints_in(self, ns: str) -> None:
        for svc in list(self.store.list(SERVICES, ns)):
            self.reconcile_endpoints(ns, svc["metadata"]["name"])

    def reconcile_endpoints(self, ns: str, name: str) -> None:
        svc = self.store.get(SERVICES, ns, name)
        if svc is None:
            if self.store.get(ENDPOINTS, ns, name) is not None:
                self.store.delete(ENDPOINTS, ns, name)
            return
        selector = svc["spec"].get("selector")
        if not selector:
            return
        pods = [
            p
            for p in self.store.list(PODS, ns)
            if selectors.matches_labels(selector, p["metadata"].get("labels") or {})
            and p.get("status", {}).get("podIP")
            and p.get("status", {}).get("phase") == "Running"
        ]
        ready = sorted((p for p in pods if pod_ready(p)), key=lambda p: p["status"]["podIP"])
        not_ready = sorted((p for p in pods if not pod_ready(p)), key=lambda p: p["status"]["podIP"])
        ports = []
        for sp in svc["spec"].get("ports") or []:
            target = sp.get("targetPort", sp.get("port"))
            if isinstance(target, str):
                target = _named_port(pods, target) or sp.get("port")
            entry = {"port": target, "protocol": sp.get("protocol", "TCP")}
            if sp.get("name"):
                entry["name"] = sp["name"]
            if sp.get("appProtocol"):
                entry["appProtocol"] = sp["appProtocol"]
            ports.append(entry)

        def addr(p: dict) -> dict:
            return {
                "ip": p["status"]["podIP"],
                "nodeName": "sandbox",
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                },
            }

        subset: dict = {}
        if ready:
            subset["addresses"] = [addr(p) for p in ready]
        if not_ready:
            subset["notReadyAddresses"] = [addr(p) for p in not_ready]
        subsets = [{**subset, "ports": ports}] if subset and ports else []
        live = self.store.get(ENDPOINTS, ns, name)
        labels = dict(svc["metadata"].get("labels") or {})
        if live is None:
            self.reg.create(
                ENDPOINTS,
                {
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns, "labels": labels},
                    "subsets": subsets,
                },
            )
        elif live.get("subsets") != subsets:
            new = copy.deepcopy(live)
            new["subsets"] = subsets
            self.reg.update(ENDPOINTS, new)

    # ---- Gateway API (Istio's gateway controller) ------------------------------------------
    def reconcile_gatewayclass(self, name: str) -> None:
        gc = self.store.get(GWC, None, name)
        if gc is None or gc.get("spec", {}).get("controllerName") != ISTIO_CONTROLLER:
            return
        old = gc.get("status", {}).get("conditions")
        conditions = merge_conditions(old, [_gcond("Accepted", True, "Accepted", "Handled by Istio controller", gc)])
        self.reg.write_status(GWC, None, name, {"conditions": conditions})

    def reconcile_gateways_in(self, ns: str) -> None:
        for gw in list(self.store.list(GW, ns)):
            self.reconcile_gateway(ns, gw["metadata"]["name"])
        for route in list(self.store.list(ROUTES, ns)):
            self.reconcile_route(ns, route["metadata"]["name"])

    def _istio_class(self, gw: dict) -> bool:
        gc = self.store.get(GWC, None, gw.get("spec", {}).get("gatewayClassName", ""))
        return gc is not None and gc.get("spec", {}).get("controllerName") == ISTIO_CONTROLLER

    def reconcile_gateway(self, ns: str, name: str) -> None:
        gw = self.store.get(GW, ns, name)
        if gw is None or not self._istio_class(gw):
            return
        cls = gw["spec"]["gatewayClassName"]
        child = gw["metadata"].get("annotations", {}).get("gateway.istio.io/name-override") or f"{name}-{cls}"
        labels = {
            "gateway.networking.k8s.io/gateway-name": name,
            "gateway.networking.k8s.io/gateway-class-name": cls,
            "gateway.istio.io/managed": "istio.io-gateway-controller",
        }
        owner = [owner_ref(gw, "Gateway", "gateway.networking.k8s.io/v1")]
        listeners = gw["spec"].get("listeners") or []
        ports = [{"name": "status-port", "port": 15021, "protocol": "TCP", "appProtocol": "tcp"}]
        seen = set()
        for lst in listeners:
            if lst.get("port") in seen:
                continue
            seen.add(lst.get("port"))
            ports.append(
                {
                    "name": _sanitise(lst.get("name", "")),
                    "port": lst.get("port"),
                    "protocol": "TCP",
                    "appProtocol": str(lst.get("protocol", "HTTP")).lower(),
                }
            )
        if self.store.get(SA, ns, child) is None:
            self.reg.create(
                SA,
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": child, "namespace": ns, "labels": labels, "ownerReferences": owner},
                },
            )
        pod_labels = {
            **labels,
            "service.istio.io/canonical-name": child,
            "sidecar.istio.io/inject": "false",
            "istio.io/gateway-name": name,
        }
        deploy_spec = {
            "replicas": 1,
            "selector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": name}},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "istio.io/rev": "default",
                        "prometheus.io/port": "15020",
                        "prometheus.io/scrape": "true",
                    },
                },
                "spec": {
                    "serviceAccountName": child,
                    "containers": [
                        {
                            "name": "istio-proxy",
                            "image": PROXY_IMAGE,
                            "args": ["proxy", "router", "--domain", f"{ns}.svc.cluster.local"],
                            "ports": [
                                {"containerPort": 15021, "name": "status-port", "protocol": "TCP"},
                                {"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"},
                            ],
                            "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}},
                        }
                    ],
                },
            },
        }
        deploy = self.store.get(DEPLOY, ns, child)
        if deploy is None:
            self.reg.create(
                DEPLOY,
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": child, "namespace": ns, "labels": labels, "ownerReferences": owner},
                    "spec": deploy_spec,
                },
            )
        svc = self.store.get(SERVICES, ns, child)
        svc_type = gw["metadata"].get("annotations", {}).get("networking.istio.io/service-type", "LoadBalancer")
        want_spec = {
            "type": svc_type,
            "selector": {"gateway.networking.k8s.io/gateway-name": name},
            "ports": ports,
            "ipFamilyPolicy": "PreferDualStack",
        }
        if svc is None:
            svc = self.reg.create(
                SERVICES,
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": child, "namespace": ns, "labels": labels, "ownerReferences": owner},
                    "spec": want_spec,
                },
            )
        elif [(p["name"], p["port"]) for p in svc["spec"].get("ports", [])] != [(p["name"], p["port"]) for p in ports]:
            new = copy.deepcopy(svc)
            new["spec"]["ports"] = ports
            svc = self.reg.update(SERVICES, new)
        ips = [i.get("ip") for i in svc.get("status", {}).get("loadBalancer", {}).get("ingress") or [] if i.get("ip")]
        if svc_type != "LoadBalancer":
            ips = [svc["spec"].get("clusterIP")]
        host = f"{child}.{ns}.svc.cluster.local"
        port_list = ",".join(f"{host}:{p['port']}" for p in ports[1:])
        routes = [r for r in self.store.list(ROUTES, ns) if self._attaches(r, ns, name)]
        listener_status = []
        for lst in listeners:
            attached = sum(1 for r in routes if self._attaches(r, ns, name, lst.get("name")))
            ok = [
                _gcond(t, s, r, "No errors found", gw)
                for t, s, r in (
                    ("Accepted", True, "Accepted"),
                    ("Conflicted", False, "NoConflicts"),
                    ("Programmed", True, "Programmed"),
                    ("ResolvedRefs", True, "ResolvedRefs"),
                )
            ]
            old = next((x for x in gw.get("status", {}).get("listeners") or [] if x.get("name") == lst.get("name")), {})
            listener_status.append(
                {
                    "name": lst.get("name"),
                    "attachedRoutes": attached,
                    "supportedKinds": [
                        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
                        {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"},
                    ],
                    "conditions": merge_conditions(old.get("conditions"), ok),
                }
            )
        if ips:
            programmed = _gcond(
                "Programmed", True, "Programmed", f"Resource programmed, assigned to service(s) {port_list}", gw
            )
            addresses = [{"type": "IPAddress", "value": ip} for ip in ips]
        else:
            programmed = _gcond(
                "Programmed",
                False,
                "AddressNotAssigned",
                f"Assigned to service(s) {port_list}, but failed to assign to all requested "
                f'addresses: address pending for hostname "{host}"',
                gw,
            )
            addresses = []
        conditions = merge_conditions(
            gw.get("status", {}).get("conditions"),
            [
                _gcond("Accepted", True, "Accepted", "Resource accepted", gw),
                programmed,
                _gcond("ResolvedRefs", True, "ResolvedRefs", "All references resolved", gw),
            ],
        )
        status = {"conditions": conditions, "listeners": listener_status}
        if addresses:
            status["addresses"] = addresses
        self.reg.write_status(GW, ns, name, status)

    @staticmethod
    def _attaches(route: dict, ns: str, gw_name: str, listener: str | None = None) -> bool:
        for ref in route.get("spec", {}).get("parentRefs") or []:
            if (
                ref.get("name") == gw_name
                and ref.get("namespace", ns) == ns
                and ref.get("kind", "Gateway") == "Gateway"
            ):
                if listener is None or ref.get("sectionName") in (None, listener):
                    return True
        return False

    def reconcile_route(self, ns: str, name: str) -> None:
        route = self.store.get(ROUTES, ns, name)
        if route is None:
            return
        parents = []
        missing = []
        for rule in route.get("spec", {}).get("rules") or []:
            for b in rule.get("backendRefs") or []:
                if (
                    b.get("kind", "Service") == "Service"
                    and self.store.get(SERVICES, b.get("namespace", ns), b.get("name", "")) is None
                ):
                    missing.append(b.get("name"))
        old_parents = {
            json.dumps(p.get("parentRef"), sort_keys=True): p for p in route.get("status", {}).get("parents") or []
        }
        for ref in route.get("spec", {}).get("parentRefs") or []:
            gw = self.store.get(GW, ref.get("namespace", ns), ref.get("name", ""))
            if gw is None or not self._istio_class(gw):
                continue
            parent_ref = {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": ref["name"],
                "namespace": ref.get("namespace", ns),
            }
            if ref.get("sectionName"):
                parent_ref["sectionName"] = ref["sectionName"]
            resolved = (
                _gcond(
                    "ResolvedRefs",
                    False,
                    "BackendNotFound",
                    f"backend(s) not found: {', '.join(sorted(set(missing)))}",
                    route,
                )
                if missing
                else _gcond("ResolvedRefs", True, "ResolvedRefs", "All references resolved", route)
            )
            new = [_gcond("Accepted", True, "Accepted", "Route was valid", route), resolved]
            old = old_parents.get(json.dumps(parent_ref, sort_keys=True), {})
            parents.append(
                {
                    "parentRef": parent_ref,
                    "controllerName": ISTIO_CONTROLLER,
                    "conditions": merge_conditions(old.get("conditions"), new),
                }
            )
        self.reg.write_status(ROUTES, ns, name, {"parents": parents})


def _gcond(kind: str, ok: bool, reason: str, message: str, obj: dict) -> dict:
    c = cond(kind, ok, reason, message, observedGeneration=obj["metadata"].get("generation", 1))
    c.pop("lastUpdateTime", None)
    return c


def _sanitise(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name.lower()).strip("-") or "listener"


def _named_port(pods: list[dict], port_name: str) -> int | None:
    for p in pods:
        for c in p.get("spec", {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if cp.get("name") == port_name:
                    return cp.get("containerPort")
    return None
