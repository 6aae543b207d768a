"""Mutual TLS policy: which PeerAuthentication governs a workload, and whether a client sends mTLS.

Istio's precedence, most specific first: a PeerAuthentication with a workload selector in the
pod's namespace, then the namespace-wide one (no selector), then the mesh-wide one (no selector,
in the root namespace). `UNSET` at a level inherits the level above; with nothing set the mode is
PERMISSIVE. A workload-level policy's `portLevelMtls` overrides the mode for single ports.
"""

from __future__ import annotations

from collections.abc import Mapping

from sandbox import catalog
from sandbox.store import Store

PEER_AUTHENTICATIONS = catalog.get("security.istio.io", "peerauthentications")
ROOT_NAMESPACE = "istio-system"
MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
DEFAULT_MODE = "PERMISSIVE"


def _selector(pa: dict) -> dict[str, str] | None:
    """The workload selector's labels; an empty selector counts as none (namespace-wide)."""
    labels = ((pa.get("spec") or {}).get("selector") or {}).get("matchLabels")
    return dict(labels) if labels else None


def _mode(spec: object) -> str:
    """The mode of an `mtls` block; missing or unknown values count as UNSET."""
    mode = spec.get("mode") if isinstance(spec, dict) else None
    return mode if mode in MODES else "UNSET"


def _oldest(pas: list[dict]) -> dict | None:
    def age(pa: dict) -> tuple[str, str]:
        return (pa["metadata"].get("creationTimestamp", ""), pa["metadata"].get("name", ""))

    return min(pas, key=age, default=None)


def _port_mode(pa: dict, port: int) -> str:
    levels = (pa.get("spec") or {}).get("portLevelMtls") or {}
    for key, spec in levels.items():
        if str(key) == str(port):
            return _mode(spec)
    return "UNSET"


def mtls_mode(store: Store, namespace: str, pod_labels: Mapping[str, str], port: int | None = None) -> str:
    """The effective mode ("STRICT", "PERMISSIVE" or "DISABLE") for a pod's inbound `port`.

    `port` is the port the workload listens on (the Service's targetPort), as in `portLevelMtls`.
    """
    local = store.list(PEER_AUTHENTICATIONS, namespace)
    workload = _oldest(
        [pa for pa in local if (sel := _selector(pa)) and all(pod_labels.get(k) == v for k, v in sel.items())]
    )
    namespace_wide = _oldest([pa for pa in local if _selector(pa) is None])
    mesh = _oldest([pa for pa in store.list(PEER_AUTHENTICATIONS, ROOT_NAMESPACE) if _selector(pa) is None])
    mode = DEFAULT_MODE
    for level in (mesh, namespace_wide, workload):
        if level is not None and (m := _mode((level.get("spec") or {}).get("mtls"))) != "UNSET":
            mode = m
    if workload is not None and port is not None and (m := _port_mode(workload, port)) != "UNSET":
        mode = m
    return mode


def _tls_mode(destination_rule: dict, port: int | None) -> str | None:
    """The DestinationRule's TLS mode for `port`: a port-level setting wins over the rule-wide one."""
    policy = (destination_rule.get("spec") or {}).get("trafficPolicy") or {}
    for setting in policy.get("portLevelSettings") or []:
        if port is not None and (setting.get("port") or {}).get("number") == port and setting.get("tls"):
            return setting["tls"].get("mode")
    return (policy.get("tls") or {}).get("mode")


def client_uses_mtls(
    store: Store,
    dest_namespace: str,
    dest_pod_labels: Mapping[str, str],
    dest_has_sidecar: bool,
    port: int | None,
    destination_rule: dict | None = None,
) -> bool:
    """Whether a client sidecar opens Istio mutual TLS to a destination pod.

    Auto mTLS: yes when the destination has a sidecar and its policy is not DISABLE. A
    DestinationRule that sets `trafficPolicy.tls.mode` overrides that: ISTIO_MUTUAL always sends
    mTLS (even to a pod without a sidecar, which then fails), any other mode does not.
    """
    explicit = _tls_mode(destination_rule, port) if destination_rule else None
    if explicit:
        return explicit == "ISTIO_MUTUAL"
    return dest_has_sidecar and mtls_mode(store, dest_namespace, dest_pod_labels, port) != "DISABLE"


def accepts(mode: str, client_mtls: bool) -> bool:
    """Whether a server sidecar in `mode` accepts a connection: STRICT needs mTLS, DISABLE refuses it."""
    if mode == "STRICT":
        return client_mtls
    if mode == "DISABLE":
        return not client_mtls
    return True
