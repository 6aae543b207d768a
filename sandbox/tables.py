"""Server-side `meta.k8s.io/v1` Table rendering for `kubectl get`.

kubectl prints only NAME and AGE unless the server renders the columns itself, so this module
reproduces kube-apiserver's printers for the built-in kinds the sandbox serves (READY `2/2`,
STATUS `ImagePullBackOff`, PORT(S) `80:30726/TCP`, ...) and the CRD table convertor for custom
resources. As on a real server, the priority-1 (`-o wide`) columns are always sent; kubectl hides
them unless asked.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sandbox.catalog import Column, ResourceType

TABLE_ACCEPT_MARKER = "as=Table"

Cell = str | int | float | bool | None
Printer = Callable[[dict, datetime], list[Cell]]

NAME_DESC = "Name must be unique within a namespace."
AGE_DESC = "Time since the object was created (its creationTimestamp)."
CONTAINERS_DESC = "Names of each container in the template."
IMAGES_DESC = "Images referenced by each container in the template."
SELECTOR_DESC = "Label selector of the pods this object manages or targets."


def wants_table(accept: str) -> bool:
    """True if the Accept header asks for a Table (kubectl get does; -o json/yaml does not)."""
    return any(
        TABLE_ACCEPT_MARKER in {p.strip() for p in media_range.split(";")[1:]} for media_range in accept.split(",")
    )


def human_age(delta: timedelta) -> str:
    """Render a duration the way kubectl's `duration.HumanDuration` does (`45s`, `5m3s`, `2d3h`)."""
    micros = delta // timedelta(microseconds=1)
    seconds = abs(micros) // 1_000_000 * (1 if micros >= 0 else -1)  # Go truncates toward zero
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"  # up to a second of clock skew still counts as "now"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return _two_units(minutes, "m", seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(hours // 24, "d", hours % 24, "h")
    days = hours // 24
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _since(value: object, now: datetime) -> str:
    """kube's translateTimestampSince: a zero/absent timestamp prints as `<unknown>`."""
    ts = _parse_time(value)
    return human_age(_aware(now) - ts) if ts else "<unknown>"


def _age(obj: dict, now: datetime) -> str:
    return _since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def _col(name: str, description: str, *, type_: str = "string", priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


NAME_COL = _col("Name", NAME_DESC, fmt="name")
AGE_COL = _col("Age", AGE_DESC)


# ---- shared cell helpers -------------------------------------------------------------------------


def _containers_and_images(template_spec: dict) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _template_spec(obj: dict) -> dict:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def _requirement(key: str, operator: str, values: list[str]) -> str:
    listed = ",".join(sorted(values))
    return {
        "In": f"{key} in ({listed})",
        "NotIn": f"{key} notin ({listed})",
        "Exists": key,
        "DoesNotExist": f"!{key}",
    }.get(operator, f"{key} {operator} ({listed})")


def _selector_string(selector: dict | None) -> str:
    """A LabelSelector as apimachinery prints it: requirements sorted by key (`app=web,tier in (a,b)`)."""
    selector = selector or {}
    reqs = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key = expr.get("key", "")
        reqs.append((key, _requirement(key, expr.get("operator", ""), expr.get("values") or [])))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def _format_label_selector(selector: dict | None) -> str:
    """metav1.FormatLabelSelector: like `_selector_string` but `<none>` when empty."""
    return _selector_string(selector) or "<none>"


def _format_labels(labels: dict | None) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, `<none>` when empty."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def _condition_true(conditions: list | None, ctype: str) -> bool:
    """The first condition of that type decides (as kube's hasJobCondition does)."""
    for cond in conditions or []:
        if cond.get("type") == ctype:
            return cond.get("status") == "True"
    return False


# ---- pods ----------------------------------------------------------------------------------------

POD_COLUMNS = [
    NAME_COL,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col("Restarts", "How many times the pod's containers restarted, and when the last one did."),
    AGE_COL,
    _col("IP", "The pod's IP address (the first of status.podIPs).", priority=1),
    _col("Node", "The node the pod is bound to.", priority=1),
    _col("Nominated Node", "The node the scheduler nominated while preempting.", priority=1),
    _col("Readiness Gates", "How many of the pod's readiness gates are true.", priority=1),
]


def _restartable(container: dict | None) -> bool:
    """A native sidecar: an init container with `restartPolicy: Always` (KEP-753)."""
    return bool(container) and container.get("restartPolicy") == "Always"


def _terminated_reason(term: dict, prefix: str) -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _latest(current: datetime | None, status: dict) -> datetime | None:
    """Track the newest `lastState.terminated.finishedAt` seen, for the `(5m ago)` restart hint."""
    finished = _parse_time(((status.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
    if finished and (current is None or finished > current):
        return finished
    return current


def _pod_cells(pod: dict, now: datetime) -> list[Cell]:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = spec.get("initContainers") or []
    init_by_name = {c.get("name"): c for c in init_specs}
    total = len(spec.get("containers") or []) + sum(1 for c in init_specs if _restartable(c))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    initializing = False
    for index, cs in enumerate(status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        restarts += cs.get("restartCount", 0)
        last_restart = _latest(last_restart, cs)
        sidecar = _restartable(init_by_name.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += cs.get("restartCount", 0)
            last_sidecar_restart = _latest(last_sidecar_restart, cs)
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if term is not None:
            reason = _terminated_reason(term, "Init:")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        # Once initialised, only sidecar restarts carry over from the init containers.
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            restarts += cs.get("restartCount", 0)
            last_restart = _latest(last_restart, cs)
            term, waiting = state.get("terminated"), state.get("waiting")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None:
                reason = _terminated_reason(term, "")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status.get("conditions"), "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell = f"{restarts} ({human_age(_aware(now) - last_restart)} ago)"

    pod_ips = status.get("podIPs") or []
    pod_ip = (pod_ips[0].get("ip") if pod_ips else status.get("podIP")) or "<none>"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conditions = {c.get("type"): c.get("status") for c in reversed(status.get("conditions") or [])}
        passed = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
        gates_cell = f"{passed}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        pod_ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_cell,
    ]


def _pod_conditions(pod: dict) -> list[dict] | None:
    """Row conditions kube adds for finished pods (kubectl can hide completed rows with them)."""
    phase = (pod.get("status") or {}).get("phase")
    messages = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}
    if phase not in messages:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": messages[phase]}]


# ---- workloads -----------------------------------------------------------------------------------

DEPLOYMENT_COLUMNS = [
    NAME_COL,
    _col("Ready", "Number of the pod with ready state"),
    _col("Up-to-date", "Total number of pods targeted by this deployment that have the desired template."),
    _col("Available", "Total number of available pods targeted by this deployment."),
    AGE_COL,
    _col("Containers", CONTAINERS_DESC, priority=1),
    _col("Images", IMAGES_DESC, priority=1),
    _col("Selector", SELECTOR_DESC, priority=1),
]


def _replicas(obj: dict) -> int:
    """spec.replicas, which the server defaults to 1."""
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else value


def _deployment_cells(obj: dict, now: datetime) -> list[Cell]:
    status = obj.get("status") or {}
    names, images = _containers_and_images(_template_spec(obj))
    return [
        _name(obj),
        f"{status.get('readyReplicas', 0)}/{_replicas(obj)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj, now),
        names,
        images,
        _selector_string((obj.get("spec") or {}).get("selector")),
    ]


STATEFULSET_COLUMNS = [
    NAME_COL,
    _col("Ready", "Number of the pod with ready state"),
    AGE_COL,
    _col("Containers", CONTAINERS_DESC, priority=1),
    _col("Images", IMAGES_DESC, priority=1),
]


def _statefulset_cells(obj: dict, now: datetime) -> list[Cell]:
    names, images = _containers_and_images(_template_spec(obj))
    ready = (obj.get("status") or {}).get("readyReplicas", 0)
    return [_name(obj), f"{ready}/{_replicas(obj)}", _age(obj, now), names, images]


REPLICASET_COLUMNS = [
    NAME_COL,
    _col("Desired", "Number of desired pods.", type_="integer"),
    _col("Current", "Number of pods created by this replica set.", type_="integer"),
    _col("Ready", "Number of pods of this replica set that are ready.", type_="integer"),
    AGE_COL,
    _col("Containers", CONTAINERS_DESC, priority=1),
    _col("Images", IMAGES_DESC, priority=1),
    _col("Selector", SELECTOR_DESC, priority=1),
]


def _replicaset_cells(obj: dict, now: datetime) -> list[Cell]:
    status = obj.get("status") or {}
    names, images = _containers_and_images(_template_spec(obj))
    return [
        _name(obj),
        _replicas(obj),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, now),
        names,
        images,
        _format_label_selector((obj.get("spec") or {}).get("selector")),
    ]


JOB_COLUMNS = [
    NAME_COL,
    _col("Status", "Status of the job."),
    _col("Completions", "Succeeded pods out of the completions wanted."),
    _col("Duration", "Time required to complete the job."),
    AGE_COL,
    _col("Containers", CONTAINERS_DESC, priority=1),
    _col("Images", IMAGES_DESC, priority=1),
    _col("Selector", SELECTOR_DESC, priority=1),
]


def _job_status(obj: dict) -> str:
    conditions = (obj.get("status") or {}).get("conditions")
    if _condition_true(conditions, "Complete"):
        return "Complete"
    if _condition_true(conditions, "Failed"):
        return "Failed"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _condition_true(conditions, ctype):
            return ctype
    return "Running"


def _job_cells(obj: dict, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    started, finished = _parse_time(status.get("startTime")), _parse_time(status.get("completionTime"))
    duration = ""
    if started:
        duration = human_age((finished or _aware(now)) - started)
    names, images = _containers_and_images(_template_spec(obj))
    return [
        _name(obj),
        _job_status(obj),
        completions,
        duration,
        _age(obj, now),
        names,
        images,
        _format_label_selector(spec.get("selector")),
    ]


# ---- services and endpoints ----------------------------------------------------------------------

SERVICE_COLUMNS = [
    NAME_COL,
    _col("Type", "How the service is exposed (ClusterIP, NodePort, LoadBalancer, ExternalName)."),
    _col("Cluster-IP", "The service's cluster IP (None for a headless service)."),
    _col("External-IP", "Load-balancer ingress addresses and external IPs."),
    _col("Port(s)", "Service ports as port[:nodePort]/protocol."),
    AGE_COL,
    _col("Selector", "Label selector of the pods behind the service.", priority=1),
]


def _external_ip(spec: dict, status: dict) -> str:
    svc_type = spec.get("type") or "ClusterIP"
    external = spec.get("externalIPs") or []
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if svc_type == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress} - {None, ""})
        return ",".join(lb + external) or "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _ports(ports: list[dict]) -> str:
    pieces = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        node_port = p.get("nodePort")
        pieces.append(f"{p.get('port')}:{node_port}/{proto}" if node_port else f"{p.get('port')}/{proto}")
    return ",".join(pieces) or "<none>"


def _service_cells(obj: dict, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(obj),
        spec.get("type") or "ClusterIP",
        cluster_ips[0] if cluster_ips else "<none>",
        _external_ip(spec, status),
        _ports(spec.get("ports") or []),
        _age(obj, now),
        _format_labels(spec.get("selector")),
    ]


ENDPOINTS_COLUMNS = [NAME_COL, _col("Endpoints", "Ready addresses as ip:port."), AGE_COL]
ENDPOINTS_SHOWN = 3


def _endpoints_text(subsets: list[dict]) -> str:
    """Up to three ready `ip:port` pairs, then ` + N more...` (kube's formatEndpoints)."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count, more = 0, False
    for subset in subsets:
        addresses = subset.get("addresses") or []
        # A headless service may have no ports: then the bare IPs are listed.
        targets = [str(p.get("port")) for p in subset.get("ports") or []] or [None]
        for port in targets:
            count += len(addresses)
            for addr in addresses:
                if len(shown) == ENDPOINTS_SHOWN:
                    more = True
                    break
                ip = addr.get("ip", "")
                host = f"[{ip}]" if ":" in ip else ip
                shown.append(f"{host}:{port}" if port is not None else ip)
    text = ",".join(shown)
    return f"{text} + {count - ENDPOINTS_SHOWN} more..." if more else text


def _endpoints_cells(obj: dict, now: datetime) -> list[Cell]:
    return [_name(obj), _endpoints_text(obj.get("subsets") or []), _age(obj, now)]


# ---- the rest of core/v1 -------------------------------------------------------------------------

NAMESPACE_COLUMNS = [NAME_COL, _col("Status", "The status of the namespace"), AGE_COL]


def _namespace_cells(obj: dict, now: datetime) -> list[Cell]:
    return [_name(obj), (obj.get("status") or {}).get("phase", ""), _age(obj, now)]


CONFIGMAP_COLUMNS = [NAME_COL, _col("Data", "Number of keys in data and binaryData."), AGE_COL]


def _configmap_cells(obj: dict, now: datetime) -> list[Cell]:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj, now)]


SECRET_COLUMNS = [
    NAME_COL,
    _col("Type", "Used to facilitate programmatic handling of secret data."),
    _col("Data", "Number of keys in data."),
    AGE_COL,
]


def _secret_cells(obj: dict, now: datetime) -> list[Cell]:
    return [_name(obj), obj.get("type") or "Opaque", len(obj.get("data") or {}), _age(obj, now)]


SERVICEACCOUNT_COLUMNS = [NAME_COL, AGE_COL]


def _serviceaccount_cells(obj: dict, now: datetime) -> list[Cell]:
    return [_name(obj), _age(obj, now)]


PVC_COLUMNS = [
    NAME_COL,
    _col("Status", "Phase of the claim (Pending, Bound, Lost)."),
    _col("Volume", "The volume bound to this claim."),
    _col("Capacity", "Actual storage of the bound volume."),
    _col("Access Modes", "Access modes of the bound volume."),
    _col("StorageClass", "StorageClass of the pvc"),
    _col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
    AGE_COL,
    _col("VolumeMode", "Filesystem or Block.", priority=1),
]
ACCESS_MODE_ABBREVIATIONS = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def _pvc_cells(obj: dict, now: datetime) -> list[Cell]:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase", "")
    volume = spec.get("volumeName") or ""
    capacity = access = ""
    if volume:  # kube shows capacity and modes only once a volume is bound
        capacity = str((status.get("capacity") or {}).get("storage", "0"))
        modes = set(status.get("accessModes") or [])
        access = ",".join(short for mode, short in ACCESS_MODE_ABBREVIATIONS if mode in modes)
    storage_class = (meta.get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class") or spec.get(
        "storageClassName", ""
    )
    return [
        _name(obj),
        phase,
        volume,
        capacity,
        access,
        storage_class or "",
        spec.get("volumeAttributesClassName") or "<unset>",
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


EVENT_COLUMNS = [
    _col("Last Seen", "When the event was last observed."),
    _col("Type", "Normal or Warning."),
    _col("Reason", "A short, machine-understandable reason for the event."),
    _col("Object", "The object the event is about, as kind/name."),
    _col("Subobject", "The part of the object the event is about (fieldPath).", priority=1),
    _col("Source", "The component (and host) that reported the event.", priority=1),
    _col("Message", "A human-readable description of the event."),
    _col("First Seen", "When the event was first observed.", priority=1),
    _col("Count", "How many times the event occurred.", priority=1),
    _col("Name", NAME_DESC, priority=1, fmt="name"),
]


def _event_cells(obj: dict, now: datetime) -> list[Cell]:
    first = obj.get("firstTimestamp") or obj.get("eventTime")
    first_seen = _since(first, now)
    last_seen = _since(obj["lastTimestamp"], now) if obj.get("lastTimestamp") else first_seen
    count = obj.get("count") or 1  # events from the events.k8s.io API carry no count
    series = obj.get("series")
    if series:
        last_seen = _since(series.get("lastObservedTime"), now)
        count = series.get("count", count)
    involved = obj.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last_seen,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {host}" if host else component,
        (obj.get("message") or "").strip(),
        first_seen,
        count,
        _name(obj),
    ]


# ---- custom resources ----------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[\*\]|\[\?([^=\]]+)=([^\]]*)\]")


def _evaluate(path: str, obj: dict) -> tuple[list[object], bool]:
    """Evaluate a catalog.Column path; returns the matches and whether `[*]` fanned out."""
    values: list[object] = [obj]
    fanned = False
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if not m:
            return [], False
        pos = m.end()
        field, fkey, fvalue = m.group(1), m.group(2), m.group(3)
        if field is not None:
            values = [v[field] for v in values if isinstance(v, dict) and v.get(field) is not None]
        elif fkey is None:
            values = [item for v in values if isinstance(v, list) for item in v]
            fanned = True
        else:
            values = [
                item
                for v in values
                if isinstance(v, list)
                for item in v
                if isinstance(item, dict) and str(item.get(fkey)) == fvalue
            ]
    return values, fanned


def _string_cell(value: object) -> str:
    """Render like kubectl's JSONPath printer: lists and maps as compact JSON, bools lower-case."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _typed_cell(column: Column, value: object, now: datetime) -> Cell:
    """kube's cellForJSONValue: a value of the wrong type gives an empty cell."""
    if column.type == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if column.type == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if column.type == "boolean" and isinstance(value, bool):
        return value
    if column.type == "date" and isinstance(value, str):
        ts = _parse_time(value)
        return human_age(_aware(now) - ts) if ts else "<invalid>"
    return None


def _custom_cell(column: Column, obj: dict, now: datetime) -> Cell:
    values, fanned = _evaluate(column.path, obj)
    if not values:
        return None  # a real CRD table leaves the cell empty
    if column.type != "string":
        return _typed_cell(column, values[0], now)
    if fanned or len(values) > 1:
        return ",".join(_string_cell(v) for v in values)
    return _string_cell(values[0])


def _custom_columns(rt: ResourceType) -> list[dict]:
    """Name, the declared columns, and Age placed before the first priority-1 column (CRD order)."""
    declared = [
        _col(
            c.name,
            c.description or f"Custom resource definition column: {c.path}",
            type_=c.type,
            priority=c.priority,
        )
        for c in rt.columns
    ]
    cut = next((i for i, c in enumerate(rt.columns) if c.priority > 0), len(declared))
    age = _col("Age", AGE_DESC, type_="date")
    return [NAME_COL, *declared[:cut], age, *declared[cut:]]


def _custom_printer(rt: ResourceType) -> Printer:
    cut = next((i for i, c in enumerate(rt.columns) if c.priority > 0), len(rt.columns))

    def cells(obj: dict, now: datetime) -> list[Cell]:
        declared = [_custom_cell(c, obj, now) for c in rt.columns]
        return [_name(obj), *declared[:cut], _age(obj, now), *declared[cut:]]

    return cells


# ---- assembly ------------------------------------------------------------------------------------

BUILTIN_PRINTERS: dict[tuple[str, str], tuple[list[dict], Printer]] = {
    ("", "pods"): (POD_COLUMNS, _pod_cells),
    ("", "services"): (SERVICE_COLUMNS, _service_cells),
    ("", "endpoints"): (ENDPOINTS_COLUMNS, _endpoints_cells),
    ("", "namespaces"): (NAMESPACE_COLUMNS, _namespace_cells),
    ("", "configmaps"): (CONFIGMAP_COLUMNS, _configmap_cells),
    ("", "secrets"): (SECRET_COLUMNS, _secret_cells),
    ("", "serviceaccounts"): (SERVICEACCOUNT_COLUMNS, _serviceaccount_cells),
    ("", "persistentvolumeclaims"): (PVC_COLUMNS, _pvc_cells),
    ("", "events"): (EVENT_COLUMNS, _event_cells),
    ("apps", "deployments"): (DEPLOYMENT_COLUMNS, _deployment_cells),
    ("apps", "statefulsets"): (STATEFULSET_COLUMNS, _statefulset_cells),
    ("apps", "replicasets"): (REPLICASET_COLUMNS, _replicaset_cells),
    ("batch", "jobs"): (JOB_COLUMNS, _job_cells),
}


def columns_for(rt: ResourceType) -> list[dict]:
    """The Table columnDefinitions for a resource type."""
    builtin = BUILTIN_PRINTERS.get((rt.group, rt.plural))
    return copy.deepcopy(builtin[0]) if builtin else _custom_columns(rt)


def _partial_metadata(obj: dict) -> dict:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": copy.deepcopy(meta)}


def to_table(
    rt: ResourceType,
    objects: list[dict],
    resource_version: str,
    now: datetime,
    include_object: str = "Metadata",
) -> dict:
    """Render objects of one type as a `meta.k8s.io/v1` Table (one row per object).

    `include_object` mirrors the `includeObject` query parameter: "Metadata" (the default, which
    feeds kubectl's NAMESPACE and LABELS columns), "Object" (kubectl asks for it with --sort-by)
    or "None".
    """
    builtin = BUILTIN_PRINTERS.get((rt.group, rt.plural))
    printer = builtin[1] if builtin else _custom_printer(rt)
    rows = []
    for obj in objects:
        row: dict = {"cells": printer(obj, now)}
        if include_object == "Object":
            row["object"] = copy.deepcopy(obj)
        elif include_object != "None":
            row["object"] = _partial_metadata(obj)
        if rt.group == "" and rt.plural == "pods" and (conditions := _pod_conditions(obj)):
            row["conditions"] = conditions
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns_for(rt),
        "rows": rows,
    }
