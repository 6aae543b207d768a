"""The resource types the sandbox serves: names, versions, scope and printer columns.

One `ResourceType` per (group, plural). Objects are stored once per type whatever version they were
written in; a read in another served version only rewrites `apiVersion` (the versions of every kind
here share one schema).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """A printer column beyond Name and Age (CRD `additionalPrinterColumns` style).

    `path` is a simple dotted path into the object; `[*]` joins every element of a list and
    `[?type=X]` selects the element of a list whose `type` is X. Built-in kinds with computed
    cells (pods, services, ...) are rendered by `sandbox.tables` instead.
    """

    name: str
    path: str = ""
    type: str = "string"
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    versions: tuple[str, ...]  # preferred first
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ("status",)
    builtin: bool = True  # built-in kinds accept strategic merge patch; custom resources do not
    columns: tuple[Column, ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def preferred_version(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        v = version or self.preferred_version
        return f"{self.group}/{v}" if self.group else v

    @property
    def qualified(self) -> str:
        """The `<plural>.<group>` form used in Status messages (`deployments.apps`)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


ALL = ("all",)
GW = ("gateway-api",)
NET_ISTIO = ("istio-io", "networking-istio-io")
SEC_ISTIO = ("istio-io", "security-istio-io")
GATEWAY_VERSIONS = ("v1", "v1beta1")
ISTIO_NET_VERSIONS = ("v1", "v1beta1", "v1alpha3")
ISTIO_SEC_VERSIONS = ("v1", "v1beta1")

RESOURCES: tuple[ResourceType, ...] = (
    # core/v1
    ResourceType("", ("v1",), "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    ResourceType("", ("v1",), "pods", "Pod", short_names=("po",), categories=ALL),
    ResourceType("", ("v1",), "services", "Service", short_names=("svc",), categories=ALL),
    ResourceType("", ("v1",), "endpoints", "Endpoints", short_names=("ep",), subresources=()),
    ResourceType("", ("v1",), "configmaps", "ConfigMap", short_names=("cm",), subresources=()),
    ResourceType("", ("v1",), "secrets", "Secret", subresources=()),
    ResourceType("", ("v1",), "serviceaccounts", "ServiceAccount", short_names=("sa",), subresources=()),
    ResourceType("", ("v1",), "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",)),
    ResourceType("", ("v1",), "events", "Event", short_names=("ev",), subresources=()),
    # apps/v1
    ResourceType(
        "apps",
        ("v1",),
        "deployments",
        "Deployment",
        short_names=("deploy",),
        categories=ALL,
        subresources=("status", "scale"),
    ),
    ResourceType(
        "apps",
        ("v1",),
        "statefulsets",
        "StatefulSet",
        short_names=("sts",),
        categories=ALL,
        subresources=("status", "scale"),
    ),
    ResourceType(
        "apps",
        ("v1",),
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        categories=ALL,
        subresources=("status", "scale"),
    ),
    # batch/v1
    ResourceType("batch", ("v1",), "jobs", "Job", categories=ALL),
    # Gateway API
    ResourceType(
        "gateway.networking.k8s.io",
        GATEWAY_VERSIONS,
        "gatewayclasses",
        "GatewayClass",
        namespaced=False,
        short_names=("gc",),
        categories=GW,
        builtin=False,
        columns=(
            Column("Controller", ".spec.controllerName"),
            Column("Accepted", ".status.conditions[?type=Accepted].status"),
            Column("Description", ".spec.description", priority=1),
        ),
    ),
    ResourceType(
        "gateway.networking.k8s.io",
        GATEWAY_VERSIONS,
        "gateways",
        "Gateway",
        short_names=("gtw",),
        categories=GW,
        builtin=False,
        columns=(
            Column("Class", ".spec.gatewayClassName"),
            Column("Address", ".status.addresses[*].value"),
            Column("Programmed", ".status.conditions[?type=Programmed].status"),
        ),
    ),
    ResourceType(
        "gateway.networking.k8s.io",
        GATEWAY_VERSIONS,
        "httproutes",
        "HTTPRoute",
        categories=GW,
        builtin=False,
        columns=(Column("Hostnames", ".spec.hostnames"),),
    ),
    # Istio networking
    ResourceType(
        "networking.istio.io",
        ISTIO_NET_VERSIONS,
        "virtualservices",
        "VirtualService",
        short_names=("vs",),
        categories=NET_ISTIO,
        builtin=False,
        columns=(Column("Gateways", ".spec.gateways"), Column("Hosts", ".spec.hosts")),
    ),
    ResourceType(
        "networking.istio.io",
        ISTIO_NET_VERSIONS,
        "destinationrules",
        "DestinationRule",
        short_names=("dr",),
        categories=NET_ISTIO,
        builtin=False,
        columns=(Column("Host", ".spec.host"),),
    ),
    ResourceType(
        "networking.istio.io",
        ISTIO_NET_VERSIONS,
        "gateways",
        "Gateway",
        short_names=("gw",),
        categories=NET_ISTIO,
        builtin=False,
    ),
    # Istio security
    ResourceType(
        "security.istio.io",
        ISTIO_SEC_VERSIONS,
        "peerauthentications",
        "PeerAuthentication",
        short_names=("pa",),
        categories=SEC_ISTIO,
        builtin=False,
        columns=(Column("Mode", ".spec.mtls.mode"),),
    ),
    ResourceType(
        "security.istio.io",
        ISTIO_SEC_VERSIONS,
        "authorizationpolicies",
        "AuthorizationPolicy",
        short_names=("ap",),
        categories=SEC_ISTIO,
        builtin=False,
        columns=(Column("Action", ".spec.action"),),
    ),
)

_BY_PATH: dict[tuple[str, str, str], ResourceType] = {
    (rt.group, v, rt.plural): rt for rt in RESOURCES for v in rt.versions
}
_BY_KIND: dict[tuple[str, str, str], ResourceType] = {
    (rt.group, v, rt.kind): rt for rt in RESOURCES for v in rt.versions
}


def group_versions() -> list[tuple[str, list[str]]]:
    """Every non-core group with its versions, preferred first, in a stable order."""
    out: dict[str, list[str]] = {}
    for rt in RESOURCES:
        if rt.group:
            versions = out.setdefault(rt.group, [])
            for v in rt.versions:
                if v not in versions:
                    versions.append(v)
    return list(out.items())


def resources_in(group: str, version: str) -> list[ResourceType]:
    return [rt for rt in RESOURCES if rt.group == group and version in rt.versions]


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    group, _, version = api_version.rpartition("/")
    return _BY_KIND.get((group, version, kind))


def get(group: str, plural: str) -> ResourceType:
    """The type for a (group, plural) known to exist (controllers use this)."""
    for rt in RESOURCES:
        if rt.group == group and rt.plural == plural:
            return rt
    raise KeyError((group, plural))
