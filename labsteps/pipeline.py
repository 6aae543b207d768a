"""The Apply pipeline: validate a student's manifests completely before anything is sent, then apply.

`validate(text, namespace)` either returns the objects, namespace forced and in apply order, or
raises `Invalid` with every problem found (line, object, message), so a student fixes them in one go.
Nothing reaches the cluster unless the whole text is valid. `apply_objects` then server-side applies
them one by one and reports which were applied and which were not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from labsteps import schemas
from labsteps.cluster import Cluster, ClusterError
from labsteps.content import KINDS

MAX_MANIFEST_BYTES = 256 * 1024
MAX_OBJECTS = 50

# Kinds a student might try that live outside any namespace: refused with a message saying so.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "GatewayClass",
        "APIService",
        "CertificateSigningRequest",
        "CSIDriver",
        "VolumeAttachment",
    }
)
# Applied first to last: what others refer to goes before what refers to it.
APPLY_ORDER = (
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "StatefulSet",
    "Deployment",
    "Gateway",
    "HTTPRoute",
    "VirtualService",
    "PeerAuthentication",
)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Problem:
    line: int | None
    object: str | None  # "Kind/name" when known
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "object": self.object, "message": self.message}

    def __str__(self) -> str:
        where = " ".join(part for part in (f"line {self.line}" if self.line else "", self.object or "") if part)
        return f"{where}: {self.message}" if where else self.message


class Invalid(Exception):
    """The manifests cannot be applied; nothing was sent to the cluster."""

    def __init__(self, problems: Sequence[Problem], status: int = 400) -> None:
        self.problems = list(problems)
        self.status = status
        count = len(self.problems)
        head = "The manifests have a problem" if count == 1 else f"The manifests have {count} problems"
        super().__init__(f"{head}; nothing was applied. {self.problems[0]}")


def ref(obj: Mapping[str, Any]) -> str:
    """ "Kind/name" of an object, as shown to students."""
    return f"{obj['kind']}/{obj['metadata']['name']}"


# ---- parsing ---------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (plain PyYAML silently keeps the last)."""


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        if isinstance(key, Hashable):
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


@dataclass
class _Document:
    node: yaml.Node
    data: Any

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def line_of(self, path: str) -> int:
        """The line of the field at a dotted path such as `spec.ports[0].port` (its nearest known parent)."""
        node = self.node
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
            child = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            elif isinstance(node, yaml.SequenceNode) and part.startswith("["):
                index = int(part[1:-1])
                child = node.value[index] if index < len(node.value) else None
            if child is None:
                break
            node = child
        return node.start_mark.line + 1


def _yaml_problem(error: yaml.YAMLError) -> Problem:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        detail = error.problem or error.context or "invalid YAML"
        return Problem(mark.line + 1 if mark else None, None, f"YAML syntax error: {detail}")
    return Problem(None, None, f"YAML syntax error: {error}")


def _shares_nodes(root: yaml.Node) -> bool:
    """Whether an alias (`*name`) makes two places share one node: refused, since expanding aliases can
    turn a small text into a huge object (the "billion laughs")."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return False


def _parse(text: str) -> list[_Document]:
    loader = _Loader(text)
    documents: list[_Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if _shares_nodes(node):
                raise Invalid([Problem(node.start_mark.line + 1, None, "YAML aliases (*name) are not supported here")])
            data = loader.construct_document(node)
            if data is not None:
                documents.append(_Document(node, data))
    except yaml.YAMLError as error:
        raise Invalid([_yaml_problem(error)]) from None
    finally:
        loader.dispose()
    return documents


# ---- validation ------------------------------------------------------------------------------------
def validate(text: str, namespace: str) -> list[dict]:
    """The objects of `text`, each forced into `namespace`, in apply order; or Invalid with every problem."""
    if len(text.encode()) > MAX_MANIFEST_BYTES:
        size = len(text.encode()) / 1024
        raise Invalid(
            [Problem(None, None, f"the manifests are {size:.0f} KiB; the limit is {MAX_MANIFEST_BYTES // 1024} KiB")],
            status=413,
        )
    documents = _parse(text)
    if len(documents) > MAX_OBJECTS:
        raise Invalid([Problem(None, None, f"{len(documents)} objects; a step applies at most {MAX_OBJECTS}")])
    problems: list[Problem] = []
    objects: list[dict] = []
    seen: dict[str, int] = {}
    for number, document in enumerate(documents, 1):
        found = _check_document(document, number, namespace)
        if found:
            problems.extend(found)
            continue
        obj = document.data
        name = ref(obj)
        if name in seen:
            problems.append(Problem(document.line, name, f"appears twice (first on line {seen[name]})"))
            continue
        seen[name] = document.line
        obj["metadata"]["namespace"] = namespace
        objects.append(obj)
    if problems:
        raise Invalid(problems)
    return sorted(objects, key=lambda o: APPLY_ORDER.index(o["kind"]))


def _check_document(document: _Document, number: int, namespace: str) -> list[Problem]:
    obj = document.data
    line = document.line
    if not isinstance(obj, dict):
        return [
            Problem(line, None, f"document {number} is not a Kubernetes object (a mapping with apiVersion, kind …)")
        ]
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not all(isinstance(value, str) and value for value in (kind, api_version, name)):
        return [Problem(line, None, "every object needs apiVersion, kind and metadata.name")]
    label = f"{kind}/{name}"
    if kind not in KINDS:
        return [Problem(line, label, _kind_refusal(kind, namespace))]
    if api_version not in KINDS[kind]:
        return [Problem(line, label, f"apiVersion {api_version} is not accepted for {kind} (use {KINDS[kind][0]})")]
    if len(name) > 63 or not _NAME.match(name):
        return [Problem(line, label, "metadata.name must be lowercase letters, digits and '-', at most 63 characters")]
    other = metadata.get("namespace")
    if other is not None and other != namespace:
        return [
            Problem(
                document.line_of("metadata.namespace"),
                label,
                f"objects must stay in your namespace {namespace} (this one names {other})",
            )
        ]
    problems = [Problem(document.line_of(path), label, message) for path, message in _pod_safety(obj)]
    problems += [
        Problem(document.line_of(path), label, f"{path}: {message}" if path else message)
        for path, message in schemas.problems(obj, namespace)
    ]
    return problems


def _kind_refusal(kind: str, namespace: str) -> str:
    allowed = ", ".join(KINDS)
    if kind in CLUSTER_SCOPED:
        return f"{kind} is a cluster-wide kind; steps only create objects inside your namespace {namespace}"
    if kind == "Secret":
        return f"Secrets are not allowed in the lab (put settings in a ConfigMap); allowed kinds: {allowed}"
    return f"kind {kind} is not allowed in the lab (allowed: {allowed})"


def _pod_safety(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Refuse pod settings that reach past the namespace onto the node (a shared cluster's nodes)."""
    if obj["kind"] not in ("Deployment", "StatefulSet"):
        return []
    spec = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
    if not isinstance(spec, dict):
        return []
    base = "spec.template.spec"
    out = [
        (f"{base}.{key}", f"{key} is not allowed in the lab")
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(key)
    ]
    for i, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, dict) and "hostPath" in volume:
            out.append((f"{base}.volumes[{i}].hostPath", "hostPath volumes are not allowed in the lab"))
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            context = container.get("securityContext") if isinstance(container, dict) else None
            if isinstance(context, dict) and context.get("privileged"):
                out.append((f"{base}.{group}[{i}].securityContext.privileged", "privileged containers are not allowed"))
    return out


# ---- apply -----------------------------------------------------------------------------------------
@dataclass
class ApplyOutcome:
    applied: list[str]
    not_applied: list[str]
    error: str = ""


def apply_objects(
    cluster: Cluster,
    namespace: str,
    objects: Sequence[Mapping[str, Any]],
    before_each: Callable[[int, int, str], None] = lambda index, total, name: None,
) -> ApplyOutcome:
    """Server-side apply each object in order; stop at the first refusal and say what was not applied.

    `before_each(index, total, "Kind/name")` runs before each object (1-based index), for progress.
    Applying is idempotent, so a task that runs again after a crash simply applies everything again.
    """
    applied: list[str] = []
    for index, obj in enumerate(objects, 1):
        name = ref(obj)
        before_each(index, len(objects), name)
        try:
            cluster.apply(obj, namespace)
        except ClusterError as exc:
            rest = [ref(o) for o in objects[index - 1 :]]
            return ApplyOutcome(applied, rest, f"the cluster refused {name}: {exc}")
        applied.append(name)
    return ApplyOutcome(applied, [])
