"""The lab's calls to the cluster: plain REST through the official client's configured connection.

The lab only touches a handful of kinds whose REST paths are the same on every cluster, so objects are
sent and read as JSON dictionaries (no generated models, no discovery round trips per task). The
connection, credentials and timeouts come from `classroom.cluster.api_client`, like everything else
the console does with a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from kubernetes.client.exceptions import ApiException

from classroom.cluster import FIELD_MANAGER, ClusterError, api_client

__all__ = ["FIELD_MANAGER", "ApiError", "Cluster", "ClusterError", "Kind", "kind_for_ref"]


@dataclass(frozen=True)
class Kind:
    name: str
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, api_version: str | None = None) -> str:
        version = api_version or self.api_version
        root = f"/api/{version}" if "/" not in version else f"/apis/{version}"
        if self.namespaced:
            root += f"/namespaces/{namespace}"
        root += f"/{self.plural}"
        return f"{root}/{name}" if name else root


# The kinds the lab applies or reads; the first apiVersion is the one used to read them.
KINDS: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("Namespace", "v1", "namespaces", namespaced=False),
        Kind("ConfigMap", "v1", "configmaps"),
        Kind("Service", "v1", "services"),
        Kind("PersistentVolumeClaim", "v1", "persistentvolumeclaims"),
        Kind("Pod", "v1", "pods"),
        Kind("Deployment", "apps/v1", "deployments"),
        Kind("StatefulSet", "apps/v1", "statefulsets"),
        Kind("Job", "batch/v1", "jobs"),
        Kind("Gateway", "gateway.networking.k8s.io/v1", "gateways"),
        Kind("HTTPRoute", "gateway.networking.k8s.io/v1", "httproutes"),
        Kind("VirtualService", "networking.istio.io/v1", "virtualservices"),
        Kind("PeerAuthentication", "security.istio.io/v1", "peerauthentications"),
    )
}


def kind_for_ref(ref: str) -> tuple[Kind, str]:
    """`deployment/splitdim` → (the Deployment kind, "splitdim")."""
    lowered, _, name = ref.partition("/")
    for kind in KINDS.values():
        if kind.name.lower() == lowered:
            return kind, name
    raise ValueError(f"unknown kind in reference {ref!r}")


class ApiError(ClusterError):
    """The API server answered with an error status; `message` is its Status message."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def not_found(self) -> bool:
        return self.status == 404


class Cluster:
    """One connection to the cluster; use as a context manager so the pool is closed."""

    def __init__(self) -> None:
        self._api = api_client()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

    # ---- raw requests ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | float | None = None,
    ) -> dict:
        """Send one request; the decoded JSON answer, or ApiError / ClusterError."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        serialized = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(*serialized, _request_timeout=timeout or settings.KUBERNETES_TIMEOUT)
            response.read()
        except ApiException as exc:
            raise ClusterError(f"cannot reach the cluster: {exc.reason}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(f"cannot reach the cluster at {self._api.configuration.host}: {exc}") from exc
        try:
            data = json.loads(response.data or b"{}")
        except ValueError:
            data = {}
        if not 200 <= response.status < 300:
            message = data.get("message") if isinstance(data, dict) else None
            raise ApiError(response.status, message or f"HTTP {response.status}", str(data.get("reason", "")))
        return data

    # ---- objects --------------------------------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", KINDS[kind].path(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, kind: str, namespace: str | None, label_selector: str = "") -> list[dict]:
        query = {"labelSelector": label_selector} if label_selector else None
        return self.request("GET", KINDS[kind].path(namespace), query=query).get("items") or []

    def apply(self, obj: Mapping[str, Any], namespace: str | None) -> dict:
        """Server-side apply `obj` as field manager `meshconsole`, taking over conflicting fields."""
        kind = KINDS[obj["kind"]]
        path = kind.path(namespace, obj["metadata"]["name"], api_version=obj["apiVersion"])
        return self.request(
            "PATCH",
            path,
            body=dict(obj),
            content_type="application/apply-patch+yaml",
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
        )

    def merge_patch(self, kind: str, namespace: str | None, name: str, patch: Mapping[str, Any]) -> dict:
        return self.request(
            "PATCH", KINDS[kind].path(namespace, name), body=dict(patch), content_type="application/merge-patch+json"
        )

    def create(self, obj: Mapping[str, Any], namespace: str | None) -> dict:
        return self.request("POST", KINDS[obj["kind"]].path(namespace, api_version=obj["apiVersion"]), body=dict(obj))

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete with background propagation; False when it was already gone."""
        try:
            self.request(
                "DELETE",
                KINDS[kind].path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    def group_served(self, group: str) -> bool:
        """Whether the API server serves the API group (CRDs installed, e.g. the Gateway API)."""
        try:
            self.request("GET", f"/apis/{group}")
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True
