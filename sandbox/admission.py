"""Admission: validation and server-side defaulting of objects before they are stored.

`validate` raises `Invalid` with Kubernetes-style causes; `default` fills in what a real API server
fills in and what kubectl relies on (kubeapi.md §8–9). Sidecar injection is admission too (Istio does
it in a mutating webhook), so it lives here.
"""

from __future__ import annotations

import re

from sandbox.catalog import ResourceType
from sandbox.mesh import validation

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Kinds whose names must be DNS-1123 labels rather than subdomains.
LABEL_NAMED = {"Namespace", "Service"}

PROXY_IMAGE = "docker.io/istio/proxyv2:1.28.0"


class Invalid(Exception):
    """A 422: `causes` is a list of (field, message) pairs; `message` replaces the usual summary
    (Istio's validating webhook words its denials its own way)."""

    def __init__(self, causes: list[tuple[str, str]], message: str | None = None) -> None:
        super().__init__(message or "; ".join(f"{f}: {m}" for f, m in causes))
        self.causes = causes
        self.message = message


def _name_problem(name: object, label: bool) -> str | None:
    if not isinstance(name, str) or not name:
        return "Required value: name or generateName is required"
    limit = 63 if label else 253
    pattern = DNS1123_LABEL if label else DNS1123_SUBDOMAIN
    if len(name) > limit:
        return f'Invalid value: "{name}": must be no more than {limit} characters'
    if not pattern.match(name):
        what = "RFC 1123 label" if label else "RFC 1123 subdomain"
        return (
            f'Invalid value: "{name}": a lowercase {what} must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    return None


def _labels_problems(labels: object, field: str) -> list[tuple[str, str]]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [(field, "Invalid value: must be a map of strings")]
    out = []
    for k, v in labels.items():
        key_name = str(k).rpartition("/")[2]
        if not isinstance(k, str) or len(key_name) > 63 or not LABEL_NAME.match(key_name):
            out.append((field, f'Invalid value: "{k}": name part must consist of alphanumeric characters'))
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            out.append(
                (
                    f"{field}.{k}",
                    f'Invalid value: "{v}": a valid label must be an empty string or '
                    "consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
    return out


def validate(rt: ResourceType, obj: dict) -> None:
    causes: list[tuple[str, str]] = []
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise Invalid([("metadata", "Required value")])
    problem = _name_problem(meta.get("name"), rt.kind in LABEL_NAMED)
    if problem:
        causes.append(("metadata.name", problem))
    causes += _labels_problems(meta.get("labels"), "metadata.labels")
    ann = meta.get("annotations")
    if ann is not None and (not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values())):
        causes.append(("metadata.annotations", "Invalid value: must be a map of strings"))
    check = _KIND_CHECKS.get(rt.kind)
    if check and not causes:
        causes += check(obj)
    if not causes and rt.kind in validation.KINDS_VALIDATED and rt.group != "":
        causes = validation.validate_istio(rt.kind, obj)
        if causes and rt.group.endswith("istio.io"):
            raise Invalid(causes, validation.webhook_message(causes))
    if causes:
        raise Invalid(causes)


def _containers_problems(spec: object, field: str) -> list[tuple[str, str]]:
    if not isinstance(spec, dict):
        return [(field, "Required value")]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [(f"{field}.containers", "Required value")]
    out = []
    names = set()
    for i, c in enumerate(containers):
        f = f"{field}.containers[{i}]"
        if not isinstance(c, dict):
            out.append((f, "Invalid value: must be an object"))
            continue
        name = c.get("name")
        if not isinstance(name, str) or not DNS1123_LABEL.match(name):
            out.append((f"{f}.name", f'Invalid value: "{name}": must be a DNS-1123 label'))
        elif name in names:
            out.append((f"{f}.name", f'Duplicate value: "{name}"'))
        names.add(name)
        if not isinstance(c.get("image"), str) or not c.get("image"):
            out.append((f"{f}.image", "Required value"))
        for j, p in enumerate(c.get("ports") or []):
            port = p.get("containerPort") if isinstance(p, dict) else None
            if not isinstance(port, int) or not 0 < port < 65536:
                out.append((f"{f}.ports[{j}].containerPort", f"Invalid value: {port}: must be between 1 and 65535"))
    return out


def _workload_problems(obj: dict) -> list[tuple[str, str]]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    out = []
    sel = spec.get("selector")
    tpl = spec.get("template") or {}
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        out.append(("spec.selector", "Required value"))
    else:
        tlabels = (tpl.get("metadata") or {}).get("labels") or {}
        for k, v in (sel.get("matchLabels") or {}).items():
            if tlabels.get(k) != v:
                out.append(
                    (
                        "spec.template.metadata.labels",
                        f"Invalid value: {tlabels}: `selector` does not match template `labels`",
                    )
                )
                break
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        out.append(("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    out += _containers_problems(tpl.get("spec"), "spec.template.spec")
    return out


def _pod_problems(obj: dict) -> list[tuple[str, str]]:
    return _containers_problems(obj.get("spec"), "spec")


def _job_problems(obj: dict) -> list[tuple[str, str]]:
    tpl = (obj.get("spec") or {}).get("template") or {}
    return _containers_problems(tpl.get("spec"), "spec.template.spec")


def _service_problems(obj: dict) -> list[tuple[str, str]]:
    spec = obj.get("spec") or {}
    out = []
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        out.append(
            (
                "spec.type",
                f'Unsupported value: "{stype}": supported values: "ClusterIP", '
                '"ExternalName", "LoadBalancer", "NodePort"',
            )
        )
    ports = spec.get("ports") or []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        out.append(("spec.ports", "Required value"))
    seen = set()
    for i, p in enumerate(ports):
        port = p.get("port") if isinstance(p, dict) else None
        if not isinstance(port, int) or not 0 < port < 65536:
            out.append((f"spec.ports[{i}].port", f"Invalid value: {port}: must be between 1 and 65535"))
        if len(ports) > 1 and not p.get("name"):
            out.append((f"spec.ports[{i}].name", "Required value"))
        if p.get("name") in seen:
            out.append((f"spec.ports[{i}].name", f'Duplicate value: "{p.get("name")}"'))
        seen.add(p.get("name"))
        proto = p.get("protocol", "TCP")
        if proto not in ("TCP", "UDP", "SCTP"):
            out.append((f"spec.ports[{i}].protocol", f'Unsupported value: "{proto}"'))
    return out


def _configmap_problems(obj: dict) -> list[tuple[str, str]]:
    out = []
    for section in ("data", "binaryData", "stringData"):
        data = obj.get(section)
        if data is None:
            continue
        if not isinstance(data, dict):
            out.append((section, "Invalid value: must be a map"))
            continue
        for k, v in data.items():
            if not isinstance(v, str):
                out.append((f"{section}[{k}]", "Invalid value: must be a string"))
    return out


_KIND_CHECKS = {
    "Deployment": _workload_problems,
    "StatefulSet": _workload_problems,
    "ReplicaSet": _workload_problems,
    "Pod": _pod_problems,
    "Job": _job_problems,
    "Service": _service_problems,
    "ConfigMap": _configmap_problems,
    "Secret": _configmap_problems,
}


# ---- defaulting ----------------------------------------------------------------------------------
def _default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        image = c.get("image", "")
        latest = ":" not in image.rpartition("/")[2] or image.endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")


def _default_template(obj: dict) -> None:
    tpl = obj["spec"].setdefault("template", {})
    tpl.setdefault("metadata", {})
    _default_pod_spec(tpl.setdefault("spec", {}))


def default(rt: ResourceType, obj: dict) -> None:
    kind = rt.kind
    spec = obj.get("spec")
    if kind == "Namespace":
        meta = obj["metadata"]
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
        _default_template(obj)
    elif kind == "StatefulSet":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        upd = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if upd.get("type", "RollingUpdate") == "RollingUpdate":
            upd.setdefault("type", "RollingUpdate")
            upd.setdefault("rollingUpdate", {"partition": 0})
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        _default_template(obj)
    elif kind == "ReplicaSet":
        spec.setdefault("replicas", 1)
        _default_template(obj)
    elif kind == "Job":
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        _default_template(obj)
        obj["spec"]["template"]["spec"].setdefault("restartPolicy", "Never")
    elif kind == "Pod":
        _default_pod_spec(obj.setdefault("spec", {}))
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        stype = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if stype != "ExternalName":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        if stype in ("LoadBalancer", "NodePort"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if stype == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif kind == "PersistentVolumeClaim":
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        spec.setdefault("storageClassName", "standard")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if string_data:
            import base64

            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(v.encode()).decode()
    elif kind == "Gateway" and rt.group == "gateway.networking.k8s.io":
        status = obj.setdefault("status", {})
        if not status.get("conditions"):
            pending = {
                "status": "Unknown",
                "reason": "Pending",
                "message": "Waiting for controller",
                "lastTransitionTime": "1970-01-01T00:00:00Z",
            }
            status["conditions"] = [{"type": "Accepted", **pending}, {"type": "Programmed", **pending}]


def wants_sidecar(namespace: dict | None, pod: dict) -> bool:
    """Istio's injection rule (mutating webhook selectors), evaluated when a pod is created."""
    pod_labels = (pod.get("metadata") or {}).get("labels") or {}
    pod_flag = pod_labels.get("sidecar.istio.io/inject")
    if pod_flag == "false":
        return False
    if (pod.get("spec") or {}).get("hostNetwork"):
        return False
    ns_labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    if ns_labels.get("istio-injection") == "enabled":
        return True
    if ns_labels.get("istio-injection") == "disabled":
        return False
    if "istio.io/rev" in ns_labels:
        return True
    return pod_flag == "true"


def inject_sidecar(pod: dict) -> None:
    """Add the classic sidecar layout: an `istio-init` init container and an `istio-proxy` container."""
    spec = pod["spec"]
    if any(c.get("name") == "istio-proxy" for c in spec.get("containers", [])):
        return
    meta = pod["metadata"]
    ann = meta.setdefault("annotations", {})
    ann["sidecar.istio.io/status"] = (
        '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":[],"imagePullSecrets":null}'
    )
    labels = meta.setdefault("labels", {})
    labels.setdefault("security.istio.io/tlsMode", "istio")
    app = labels.get("app") or meta.get("generateName", meta.get("name", "")).rstrip("-")
    labels.setdefault("service.istio.io/canonical-name", app)
    labels.setdefault("service.istio.io/canonical-revision", labels.get("version", "latest"))
    spec.setdefault("initContainers", []).append(
        {
            "name": "istio-init",
            "image": PROXY_IMAGE,
            "args": ["istio-iptables", "-p", "15001", "-z", "15006"],
            "imagePullPolicy": "IfNotPresent",
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
    )
    spec["containers"].append(
        {
            "name": "istio-proxy",
            "image": PROXY_IMAGE,
            "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
            "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}},
            "imagePullPolicy": "IfNotPresent",
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
    )
